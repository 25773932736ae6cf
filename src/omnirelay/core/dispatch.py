"""Try a model's candidate channels in order, with bounded attempts and total time.

Retry on the next candidate after connection errors, timeouts, 429, 5xx and channel-credential
errors; never after a 4xx that is the client's fault (that one goes back to the client at once).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from omnirelay.core.redact import Redactor
from omnirelay.core.router import Channel, Router
from omnirelay.errors import (
    ContentRefused,
    GatewayError,
    GenerationFailed,
    RateLimited,
    Unavailable,
    UpstreamClientError,
    UpstreamError,
    UpstreamTimeout,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.settings import RoutingSettings

T = TypeVar("T")
Attempt = Callable[[Channel, str, float], Awaitable[T]]


class AttemptLog:
    """Where the dispatcher reports progress, for the usage row."""

    __slots__ = ("attempts", "channel")

    def __init__(self) -> None:
        self.attempts = 0
        self.channel: str | None = None


async def dispatch(
    router: Router, routing: RoutingSettings, model: str, call: Attempt[T], log: AttemptLog
) -> tuple[Channel, T]:
    candidates = router.candidates(model)
    deadline = time.monotonic() + routing.total_timeout_s
    last: ProviderError | None = None
    for channel in candidates:
        if log.attempts >= routing.max_attempts:
            break
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        if not channel.breaker.acquire():
            continue
        probe = channel.breaker.probing
        log.attempts += 1
        log.channel = channel.name
        try:
            result = await call(channel, channel.model_map[model], min(channel.config.timeout_s, remaining))
        except ProviderError as exc:
            # A request the client got wrong says nothing about the channel's health.
            channel.breaker.record(exc.client_fault, probe=probe)
            last = exc
            if not exc.retryable:
                raise to_gateway_error(exc, router.redactor, log.attempts) from None
            continue
        except BaseException:
            channel.breaker.release()
            raise
        channel.breaker.record(True, probe=probe)
        return channel, result
    if last is None:
        raise Unavailable(
            f"No channel is available for model `{model}` right now; every upstream serving it is "
            "disabled or cooling down after errors. Retry later."
        )
    raise final_error(last, log.attempts, router.redactor)


def to_gateway_error(exc: ProviderError, redactor: Redactor, attempts: int = 1) -> GatewayError:
    """A non-retryable upstream answer, passed on with its status and (redacted) error body."""
    message = redactor.text(exc.message)
    if exc.kind is FailureKind.GENERATION:
        if exc.client_fault:
            return ContentRefused(f"The upstream refused this request: {message}")
        return GenerationFailed(f"The upstream could not generate a result: {message}")
    if exc.client_fault and exc.status is not None:
        body = redactor.json(exc.body) if exc.body is not None else None
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict)):
            body = {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            }
        return UpstreamClientError(exc.status, body, message)
    return final_error(exc, attempts, redactor)


def final_error(exc: ProviderError, attempts: int, redactor: Redactor) -> GatewayError:
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    if exc.kind is FailureKind.TIMEOUT:
        return UpstreamTimeout(f"The upstream did not answer in time ({tries}).")
    if exc.kind is FailureKind.CONNECT:
        return UpstreamError(
            f"Could not reach an upstream for this model ({tries}; {redactor.text(exc.message)})."
        )
    if exc.status == 429:
        return RateLimited(f"The upstream is rate limiting this model ({tries}); retry later.")
    if exc.status in (401, 402, 403):
        return UpstreamError(
            f"The upstream refused the gateway's credentials (HTTP {exc.status}, {tries}); "
            "the operator must check the channel."
        )
    return UpstreamError(
        f"The upstream failed ({tries}); last answer HTTP {exc.status}: {redactor.text(exc.message)}"
    )
