"""Routing through the real gateway on SQLite and PostgreSQL: fallback, retries, breaker, key rotation."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import GatewayFactory, sim_channel
from tests.support.server import GatewayServer
from tests.upstreams.openai import OpenAISim, sim_in_thread

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "route me"}]}


@pytest.fixture
def backup() -> Iterator[OpenAISim]:
    with sim_in_thread() as running:
        yield running


def chat(server: GatewayServer, key: str, body: dict[str, object] | None = None) -> httpx.Response:
    return server.post_chat(key, body or BODY)


def two_tier(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str, **extra: object
) -> GatewayServer:
    return gateway_factory(
        [sim_channel(sim, "primary", priority=0), sim_channel(backup, "backup", priority=1)],
        database_url=database_url,
        **extra,
    )


@pytest.mark.parametrize("status", [500, 502, 503, 429, 401])
def test_retryable_failures_fall_back_to_the_next_tier(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str, status: int
) -> None:
    server = two_tier(gateway_factory, sim, backup, database_url)
    _, key = server.account_key(allow_manage_key=True)
    sim.config.fail_next = [status]
    resp = chat(server, key)
    assert resp.status_code == 200, resp.text
    assert len(sim.chat_requests) == 1 and len(backup.chat_requests) == 1
    record = server.get(f"/dashboard/record/{resp.headers['request-id']}", key).json()["data"]
    assert record["status"] == "ok"


def test_connection_drop_falls_back(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    server = two_tier(gateway_factory, sim, backup, database_url)
    _, key = server.account_key()
    sim.config.drop_connection_next = 1
    assert chat(server, key).status_code == 200
    assert len(backup.chat_requests) == 1


def test_client_fault_is_not_retried(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    server = two_tier(gateway_factory, sim, backup, database_url)
    account_id, key = server.account_key("5")
    sim.config.fail_next = [400]
    resp = chat(server, key)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "invalid_request_error"
    assert backup.chat_requests == []
    # A failed call costs nothing.
    assert server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"] == "5"


def test_stream_falls_back_before_the_first_byte(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    server = two_tier(gateway_factory, sim, backup, database_url)
    _, key = server.account_key()
    sim.config.fail_next = [503]
    resp = chat(server, key, {**BODY, "stream": True})
    assert resp.status_code == 200
    assert resp.text.rstrip().endswith("data: [DONE]")
    assert len(backup.chat_requests) == 1


def test_all_candidates_failing_gives_502_without_secrets(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    server = two_tier(gateway_factory, sim, backup, database_url)
    _, key = server.account_key()
    sim.config.fail_next = [500]
    backup.config.fail_next = [500]
    resp = chat(server, key)
    assert resp.status_code == 502
    error = resp.json()["error"]
    assert error["err_code"] == -10003 and "2 attempts" in error["message"]
    assert "sk-upstream-test" not in resp.text


def test_timeout_gives_504(gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str) -> None:
    server = gateway_factory([sim_channel(sim, timeout_s=0.3)], database_url=database_url)
    _, key = server.account_key()
    sim.config.latency_ms = 1500
    resp = chat(server, key)
    assert resp.status_code == 504
    assert resp.json()["error"]["err_code"] == -1024


def test_all_rate_limited_gives_429(
    gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str
) -> None:
    server = gateway_factory([sim_channel(sim)], database_url=database_url)
    _, key = server.account_key()
    sim.config.fail_next = [429]
    resp = chat(server, key)
    assert resp.status_code == 429
    assert resp.headers["retry-after"]


def test_max_attempts_bounds_the_tries(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    with sim_in_thread() as third:
        server = gateway_factory(
            [
                sim_channel(sim, "a", priority=0),
                sim_channel(backup, "b", priority=1),
                sim_channel(third, "c", priority=2),
            ],
            database_url=database_url,
            routing={"max_attempts": 2},
        )
        _, key = server.account_key()
        sim.config.fail_next = [500]
        backup.config.fail_next = [500]
        assert chat(server, key).status_code == 502
        assert third.chat_requests == []


def test_breaker_opens_then_probes(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    server = two_tier(
        gateway_factory,
        sim,
        backup,
        database_url,
        routing={"breaker": {"window": 4, "min_requests": 3, "error_rate": 0.5, "cooldown_s": 0.5}},
    )
    _, key = server.account_key()
    sim.config.fail_next = [500, 500, 500]
    for _ in range(3):
        assert chat(server, key).status_code == 200
    assert server.admin("GET", "/admin/channels/primary").json()["breaker"] == "open"
    before = len(sim.chat_requests)
    assert chat(server, key).status_code == 200
    assert len(sim.chat_requests) == before, "an open breaker keeps traffic away"
    import time

    time.sleep(0.6)
    assert chat(server, key).status_code == 200
    assert len(sim.chat_requests) == before + 1, "after the cooldown one probe goes through"
    assert server.admin("GET", "/admin/channels/primary").json()["breaker"] == "closed"


def test_upstream_keys_rotate(gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str) -> None:
    sim.api_keys.update({"sk-upstream-two"})
    server = gateway_factory(
        [sim_channel(sim, api_key=None, api_keys=["sk-upstream-test", "sk-upstream-two"])],
        database_url=database_url,
    )
    _, key = server.account_key()
    for _ in range(4):
        assert chat(server, key).status_code == 200
    seen = [r.headers["authorization"] for r in sim.chat_requests]
    assert seen == ["Bearer sk-upstream-test", "Bearer sk-upstream-two"] * 2


def test_weighted_split_inside_a_tier(
    gateway_factory: GatewayFactory, sim: OpenAISim, backup: OpenAISim, database_url: str
) -> None:
    server = gateway_factory(
        [sim_channel(sim, "heavy", weight=4), sim_channel(backup, "light", weight=1)],
        database_url=database_url,
    )
    _, key = server.account_key()
    for _ in range(100):
        assert chat(server, key).status_code == 200
    heavy = len(sim.chat_requests)
    assert 65 <= heavy <= 95, heavy
    assert heavy + len(backup.chat_requests) == 100
