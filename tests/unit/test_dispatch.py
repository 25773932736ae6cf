"""omnirelay.core.dispatch and the OpenAI-compatible status classification."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from omnirelay.core import dispatch as dispatch_module
from omnirelay.core.breaker import Breaker, State
from omnirelay.core.dispatch import AttemptLog, dispatch, final_error, to_gateway_error
from omnirelay.core.redact import Redactor
from omnirelay.core.router import Channel, Router
from omnirelay.errors import (
    GatewayError,
    RateLimited,
    Unavailable,
    UpstreamClientError,
    UpstreamError,
    UpstreamTimeout,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.openai_compat.errors import classify_status, error_message, http_error
from omnirelay.settings import BreakerSettings, ChannelConfig, RoutingSettings

SECRET = "sk-chan-b-secret-0001"


@dataclass
class FakeAdapter:
    name: str


@dataclass
class Script:
    """What each channel does when called: an exception to raise, or a result to return."""

    outcomes: dict[str, ProviderError | BaseException | str]
    calls: list[tuple[str, str, float]] = field(default_factory=list)

    async def __call__(self, channel: Channel, upstream_model: str, timeout_s: float) -> str:
        assert isinstance(channel.adapter, FakeAdapter)
        assert channel.adapter.name == channel.name
        self.calls.append((channel.name, upstream_model, timeout_s))
        outcome = self.outcomes[channel.name]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    @property
    def called(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def _router(n: int = 3, **channel_kw: Any) -> Router:
    """Channels a, b, c, ... at priorities 0, 1, 2, ... so the order is fixed; all serve "m"."""
    router = Router(
        # one failure opens a breaker; a success alone does not
        BreakerSettings(min_requests=1, error_rate=1.0, cooldown_s=30.0),
        lambda cfg: FakeAdapter(cfg.name),
        rng=random.Random(0),
    )
    configs = []
    for i in range(n):
        name = "abcdefgh"[i]
        data: dict[str, Any] = {
            "name": name,
            "base_url": f"https://{name}.example.com/v1",
            "api_keys": [f"sk-chan-{name}-secret-0001"],
            "models": {"m": f"upstream-{name}"},
            "priority": i,
            "timeout_s": 60.0,
        }
        data.update(channel_kw)
        configs.append(ChannelConfig.model_validate(data))
    router.set_channels(configs)
    return router


def _breaker(router: Router, name: str) -> Breaker:
    channel = router.channel(name)
    assert channel is not None
    return channel.breaker


def _recorded(breaker: Breaker) -> str:
    """What the dispatcher recorded on a fresh breaker (min_requests=1, error_rate=1.0).

    A failure opens it at once. Otherwise one more failure tells a recorded success (1 of 2 failed:
    stays closed) from nothing recorded (1 of 1 failed: opens).
    """
    if breaker.state is State.OPEN:
        return "failure"
    assert breaker.state is State.CLOSED
    breaker.record(False)
    return "success" if breaker.state is State.CLOSED else "nothing"


def _http(
    status: int, message: str = "upstream said no", body: dict[str, Any] | None = None
) -> ProviderError:
    return http_error(status, body if body is not None else {"error": {"message": message}}, {})


def _connect() -> ProviderError:
    return ProviderError(
        FailureKind.CONNECT, "upstream connection failed (ClientConnectorError)", retryable=True
    )


def _timeout() -> ProviderError:
    return ProviderError(FailureKind.TIMEOUT, "upstream timed out", retryable=True)


async def _run(
    router: Router, script: Script, routing: RoutingSettings | None = None, model: str = "m"
) -> tuple[Channel, str, AttemptLog]:
    log = AttemptLog()
    channel, result = await dispatch(router, routing or RoutingSettings(), model, script, log)
    return channel, result, log


# ---- success and retries ------------------------------------------------------------------------


async def test_first_channel_succeeds() -> None:
    router = _router()
    script = Script({"a": "reply-a", "b": "reply-b", "c": "reply-c"})
    channel, result, log = await _run(router, script)
    assert (channel.name, result) == ("a", "reply-a")
    assert script.calls == [("a", "upstream-a", 60.0)]
    assert (log.attempts, log.channel) == (1, "a")
    assert _recorded(_breaker(router, "a")) == "success"
    assert _recorded(_breaker(router, "b")) == "nothing"


@pytest.mark.parametrize(
    "failure",
    [
        _connect(),
        _timeout(),
        _http(429),
        _http(500),
        _http(502),
        _http(503),
        _http(401),
        _http(403),
        _http(402),
        _http(429, body={"error": {"message": "quota", "code": "insufficient_quota"}}),
    ],
    ids=["connect", "timeout", "429", "500", "502", "503", "401", "403", "402", "insufficient_quota"],
)
async def test_retry_on_the_next_candidate(failure: ProviderError) -> None:
    router = _router()
    script = Script({"a": failure, "b": "reply-b", "c": "reply-c"})
    channel, result, log = await _run(router, script)
    assert (channel.name, result) == ("b", "reply-b")
    assert script.called == ["a", "b"]
    assert script.calls[1] == ("b", "upstream-b", 60.0)
    assert (log.attempts, log.channel) == (2, "b")
    assert _recorded(_breaker(router, "a")) == "failure"
    assert _recorded(_breaker(router, "b")) == "success"
    assert _recorded(_breaker(router, "c")) == "nothing"


async def test_retry_through_several_failures() -> None:
    router = _router(4)
    script = Script({"a": _connect(), "b": _http(503), "c": _timeout(), "d": "reply-d"})
    routing = RoutingSettings(max_attempts=4)
    channel, result, log = await _run(router, script, routing)
    assert (channel.name, result, log.attempts) == ("d", "reply-d", 4)
    assert script.called == ["a", "b", "c", "d"]


# ---- client faults ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_no_retry_on_client_fault(status: int) -> None:
    router = _router()
    body = {
        "error": {
            "message": f"bad request, your key {SECRET} is fine",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "bad_thing",
        }
    }
    script = Script({"a": _http(status, body=body), "b": "reply-b", "c": "reply-c"})
    with pytest.raises(UpstreamClientError) as info:
        await _run(router, script)
    exc = info.value
    assert script.called == ["a"]
    assert exc.http_status == status
    assert exc.body == {
        "error": {
            "message": "bad request, your key [redacted] is fine",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "bad_thing",
        }
    }
    assert exc.message == "bad request, your key [redacted] is fine"
    assert exc.code == "bad_thing"
    # the client's mistake says nothing bad about the channel
    assert _recorded(_breaker(router, "a")) == "success"


async def test_context_length_is_a_client_fault() -> None:
    router = _router()
    body = {
        "error": {"message": "too long", "code": "context_length_exceeded", "type": "invalid_request_error"}
    }
    script = Script({"a": _http(400, body=body), "b": "reply-b", "c": "reply-c"})
    with pytest.raises(UpstreamClientError) as info:
        await _run(router, script)
    assert script.called == ["a"]
    assert info.value.code == "context_length_exceeded"


async def test_client_fault_after_a_retry() -> None:
    router = _router()
    script = Script({"a": _http(500), "b": _http(404, "no such model"), "c": "reply-c"})
    with pytest.raises(UpstreamClientError) as info:
        await _run(router, script)
    assert script.called == ["a", "b"]
    assert info.value.http_status == 404
    assert _recorded(_breaker(router, "a")) == "failure"
    assert _recorded(_breaker(router, "b")) == "success"


async def test_client_fault_without_error_object_gets_a_synthesised_body() -> None:
    router = _router()
    failure = ProviderError(
        FailureKind.HTTP,
        f"upstream answered HTTP 400 with {SECRET}",
        status=400,
        body={"detail": "nope"},
        retryable=False,
        client_fault=True,
    )
    script = Script({"a": failure, "b": "x", "c": "x"})
    with pytest.raises(UpstreamClientError) as info:
        await _run(router, script)
    assert info.value.body == {
        "error": {
            "message": "upstream answered HTTP 400 with [redacted]",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }
    assert info.value.http_status == 400


async def test_client_fault_without_body() -> None:
    router = _router()
    failure = ProviderError(
        FailureKind.HTTP,
        "upstream answered HTTP 422",
        status=422,
        body=None,
        retryable=False,
        client_fault=True,
    )
    with pytest.raises(UpstreamClientError) as info:
        await _run(router, Script({"a": failure, "b": "x", "c": "x"}))
    assert info.value.http_status == 422
    assert info.value.body == {
        "error": {
            "message": "upstream answered HTTP 422",
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        }
    }


async def test_non_retryable_channel_failure_stops_at_once() -> None:
    router = _router()
    failure = ProviderError(FailureKind.HTTP, "broken", status=500, retryable=False, client_fault=False)
    with pytest.raises(UpstreamError) as info:
        await _run(router, Script({"a": failure, "b": "x", "c": "x"}))
    assert type(info.value) is UpstreamError
    assert info.value.http_status == 502
    assert _recorded(_breaker(router, "a")) == "failure"


# ---- bounds -------------------------------------------------------------------------------------


async def test_max_attempts_bound() -> None:
    router = _router(5)
    script = Script({name: _http(503) for name in "abcde"})
    with pytest.raises(UpstreamError) as info:
        await _run(router, script, RoutingSettings(max_attempts=2))
    assert script.called == ["a", "b"]
    assert "(2 attempts)" in info.value.message
    assert _recorded(_breaker(router, "c")) == "nothing"


async def test_max_attempts_one() -> None:
    router = _router()
    script = Script({"a": _connect(), "b": "x", "c": "x"})
    with pytest.raises(UpstreamError) as info:
        await _run(router, script, RoutingSettings(max_attempts=1))
    assert script.called == ["a"]
    assert "1 attempt;" in info.value.message


async def test_total_time_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr(dispatch_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))

    class Slow(Script):
        async def __call__(self, channel: Channel, upstream_model: str, timeout_s: float) -> str:
            clock[0] += {"a": 7.0, "b": 5.0}.get(channel.name, 0.0)
            return await super().__call__(channel, upstream_model, timeout_s)

    router = _router()
    script = Slow({"a": _timeout(), "b": _timeout(), "c": "reply-c"})
    with pytest.raises(UpstreamTimeout):
        await _run(router, script, RoutingSettings(total_timeout_s=10.0, max_attempts=3))
    # a gets min(60, 10); b gets the 3 s left; c is never tried: the deadline has passed
    assert script.calls == [("a", "upstream-a", 10.0), ("b", "upstream-b", 3.0)]


async def test_timeout_is_the_channel_timeout_when_time_is_plenty() -> None:
    router = _router(1, timeout_s=2.5)
    script = Script({"a": "ok"})
    await _run(router, script, RoutingSettings(total_timeout_s=300.0))
    assert script.calls == [("a", "upstream-a", 2.5)]


# ---- final errors -------------------------------------------------------------------------------


async def test_all_fail_5xx_is_upstream_error_502() -> None:
    router = _router()
    script = Script({"a": _connect(), "b": _http(429), "c": _http(500, f"internal error near {SECRET}")})
    with pytest.raises(UpstreamError) as info:
        await _run(router, script)
    exc = info.value
    assert type(exc) is UpstreamError
    assert exc.http_status == 502
    assert (
        exc.message
        == "The upstream failed (3 attempts); last answer HTTP 500: internal error near [redacted]"
    )
    for name in "abc":
        assert _recorded(_breaker(router, name)) == "failure"


async def test_all_fail_last_timeout_is_504() -> None:
    router = _router()
    script = Script({"a": _http(500), "b": _connect(), "c": _timeout()})
    with pytest.raises(UpstreamTimeout) as info:
        await _run(router, script)
    assert info.value.http_status == 504
    assert info.value.err_code == -1024
    assert info.value.message == "The upstream did not answer in time (3 attempts)."


async def test_all_fail_last_429_is_rate_limited() -> None:
    router = _router()
    script = Script({"a": _timeout(), "b": _http(500), "c": _http(429)})
    with pytest.raises(RateLimited) as info:
        await _run(router, script)
    assert info.value.http_status == 429
    assert info.value.message == "The upstream is rate limiting this model (3 attempts); retry later."


async def test_all_fail_last_connect_is_502() -> None:
    router = _router(2)
    script = Script({"a": _timeout(), "b": _connect()})
    with pytest.raises(UpstreamError) as info:
        await _run(router, script)
    assert type(info.value) is UpstreamError
    assert info.value.http_status == 502
    assert info.value.message == (
        "Could not reach an upstream for this model "
        "(2 attempts; upstream connection failed (ClientConnectorError))."
    )


async def test_all_fail_last_credentials_is_502() -> None:
    router = _router(2)
    script = Script({"a": _timeout(), "b": _http(401, "Incorrect API key provided: sk-abc*****wxyz")})
    with pytest.raises(UpstreamError) as info:
        await _run(router, script)
    assert info.value.http_status == 502
    assert "HTTP 401" in info.value.message
    assert "sk-abc" not in info.value.message


# ---- no candidates ------------------------------------------------------------------------------


async def test_unknown_model_is_unavailable() -> None:
    router = _router()
    script = Script({"a": "x", "b": "x", "c": "x"})
    with pytest.raises(Unavailable) as info:
        await _run(router, script, model="other")
    assert info.value.http_status == 503
    assert info.value.err_code == -10008
    assert "`other`" in info.value.message
    assert script.calls == []


async def test_all_breakers_open_is_unavailable() -> None:
    router = _router()
    for name in "abc":
        _breaker(router, name).record(False)
    script = Script({"a": "x", "b": "x", "c": "x"})
    with pytest.raises(Unavailable):
        await _run(router, script)
    assert script.calls == []


async def test_open_breaker_channel_skipped() -> None:
    router = _router()
    _breaker(router, "a").record(False)
    script = Script({"a": "reply-a", "b": "reply-b", "c": "x"})
    channel, result, log = await _run(router, script)
    assert (channel.name, result, log.attempts) == ("b", "reply-b", 1)
    assert script.called == ["b"]


async def test_disabled_channels_are_unavailable() -> None:
    router = _router(2, enabled=False)
    with pytest.raises(Unavailable):
        await _run(router, Script({"a": "x", "b": "x"}))


async def test_refused_acquire_is_skipped_without_an_attempt() -> None:
    router = _router()
    breaker = _breaker(router, "a")
    breaker.record(False, now=time.monotonic() - 1000.0)  # open, cooldown long over

    class TakeProbeFirst(Router):
        def candidates(self, model: str) -> list[Channel]:
            found = router.candidates(model)
            assert breaker.acquire()  # someone else takes the half-open probe in between
            return found

    wrapper = TakeProbeFirst(BreakerSettings(), lambda cfg: None)
    wrapper.redactor = router.redactor
    script = Script({"a": "reply-a", "b": "reply-b", "c": "x"})
    channel, _, log = await _run(wrapper, script)
    assert channel.name == "b"
    assert script.called == ["b"]
    assert log.attempts == 1


# ---- the half-open probe and cancellation -------------------------------------------------------


async def test_cancelled_probe_releases_the_slot() -> None:
    router = _router()
    breaker = _breaker(router, "a")
    breaker.record(False, now=time.monotonic() - 1000.0)
    script = Script({"a": asyncio.CancelledError(), "b": "reply-b", "c": "x"})
    with pytest.raises(asyncio.CancelledError):
        await _run(router, script)
    assert breaker.state is State.HALF_OPEN
    assert breaker.available()  # the probe slot is free again
    assert script.called == ["a"]


async def test_unexpected_exception_propagates_and_releases() -> None:
    router = _router()
    breaker = _breaker(router, "a")
    breaker.record(False, now=time.monotonic() - 1000.0)
    script = Script({"a": RuntimeError("bug"), "b": "reply-b", "c": "x"})
    with pytest.raises(RuntimeError, match="bug"):
        await _run(router, script)
    assert breaker.available()


async def test_half_open_probe_success_closes() -> None:
    router = _router()
    breaker = _breaker(router, "a")
    breaker.record(False, now=time.monotonic() - 1000.0)
    channel, _, _ = await _run(router, Script({"a": "reply-a", "b": "x", "c": "x"}))
    assert channel.name == "a"
    assert breaker.state is State.CLOSED


async def test_half_open_probe_failure_reopens() -> None:
    router = _router()
    breaker = _breaker(router, "a")
    breaker.record(False, now=time.monotonic() - 1000.0)
    channel, _, _ = await _run(router, Script({"a": _http(503), "b": "reply-b", "c": "x"}))
    assert channel.name == "b"
    assert breaker.state is State.OPEN


# ---- to_gateway_error / final_error directly ----------------------------------------------------


def test_to_gateway_error_client_fault() -> None:
    redactor = Redactor([SECRET])
    exc = to_gateway_error(_http(400, body={"error": {"message": f"key {SECRET}", "code": "c"}}), redactor)
    assert isinstance(exc, UpstreamClientError)
    assert exc.body == {"error": {"message": "key [redacted]", "code": "c"}}
    assert exc.message == "key [redacted]"


def test_final_error_messages_never_carry_secrets() -> None:
    redactor = Redactor([SECRET])
    for failure in (
        ProviderError(FailureKind.CONNECT, f"connect to {SECRET} failed", retryable=True),
        ProviderError(FailureKind.TIMEOUT, f"timeout {SECRET}", retryable=True),
        ProviderError(FailureKind.HTTP, f"x {SECRET}", status=429, retryable=True),
        ProviderError(FailureKind.HTTP, f"x {SECRET}", status=401, retryable=True),
        ProviderError(FailureKind.HTTP, f"x {SECRET}", status=500, retryable=True),
    ):
        exc: GatewayError = final_error(failure, 2, redactor)
        assert SECRET not in exc.message, failure.kind


def test_final_error_attempt_wording() -> None:
    redactor = Redactor()
    assert final_error(_timeout(), 1, redactor).message == "The upstream did not answer in time (1 attempt)."
    assert final_error(_timeout(), 2, redactor).message == "The upstream did not answer in time (2 attempts)."


# ---- classify_status ----------------------------------------------------------------------------

RETRY = (True, False)  # (retry on the next candidate, the client's fault)
CLIENT = (False, True)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, CLIENT),
        (401, RETRY),
        (402, RETRY),
        (403, RETRY),
        (404, CLIENT),
        (408, RETRY),
        (409, RETRY),
        (413, CLIENT),
        (415, CLIENT),
        (422, CLIENT),
        (425, RETRY),
        (429, RETRY),
        (500, RETRY),
        (502, RETRY),
        (503, RETRY),
        (504, RETRY),
        (529, RETRY),
        (599, RETRY),
        (405, CLIENT),  # unknown 4xx: the client's fault
        (410, CLIENT),
        (418, CLIENT),
        (451, CLIENT),
    ],
)
def test_classify_status_table(status: int, expected: tuple[bool, bool]) -> None:
    assert classify_status(status, None) == expected
    assert classify_status(status, {"error": {"message": "m", "code": "unlisted_code"}}) == expected


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (429, {"error": {"code": "insufficient_quota"}}, RETRY),
        (429, {"error": {"type": "insufficient_quota", "code": None}}, RETRY),
        (400, {"error": {"code": "insufficient_quota"}}, RETRY),  # the code beats the 400 rule
        (400, {"error": {"code": "context_length_exceeded"}}, CLIENT),
        (500, {"error": {"code": "context_length_exceeded"}}, CLIENT),  # the code beats the 5xx rule
        (429, {"error": {"code": "context_length_exceeded"}}, CLIENT),
        (400, {"error": {"code": "invalid_api_key"}}, RETRY),
        (404, {"error": {"type": "invalid_api_key"}}, RETRY),
    ],
)
def test_classify_status_code_overrides(
    status: int, body: dict[str, Any], expected: tuple[bool, bool]
) -> None:
    assert classify_status(status, body) == expected


@pytest.mark.parametrize(
    "body",
    [{"error": "insufficient_quota"}, {"code": "insufficient_quota"}, {"error": {"code": 429}}, {}],
)
def test_classify_status_ignores_unstructured_codes(body: dict[str, Any]) -> None:
    assert classify_status(400, body) == CLIENT


def test_error_message() -> None:
    assert error_message({"error": {"message": "structured"}}, "fb") == "structured"
    assert error_message({"error": "plain"}, "fb") == "plain"
    assert error_message({"message": "top"}, "fb") == "top"
    assert error_message({"error": {"message": 5}}, "fb") == "fb"
    assert error_message(None, "fb") == "fb"


def test_http_error() -> None:
    body = {"error": {"message": "Rate limit reached", "code": "rate_limit_exceeded"}}
    exc = http_error(429, body, {"retry-after": "3"})
    assert exc.kind is FailureKind.HTTP
    assert exc.status == 429
    assert exc.body is body
    assert exc.message == "Rate limit reached"
    assert (exc.retryable, exc.client_fault) == (True, False)
    assert exc.headers == {"retry-after": "3"}
    bare = http_error(503, None, {})
    assert bare.message == "upstream answered HTTP 503"
    assert (bare.retryable, bare.client_fault) == (True, False)
