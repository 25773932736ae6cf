"""A client that leaves mid-stream cancels the upstream call and pays for what was produced."""

from __future__ import annotations

import time

import httpx

from tests.conftest import GatewayFactory, sim_channel
from tests.support.server import HTTP
from tests.upstreams.openai import OpenAISim


def test_disconnect_cancels_upstream_and_bills_what_was_produced(
    gateway_factory: GatewayFactory, sim: OpenAISim
) -> None:
    server = gateway_factory([sim_channel(sim)])
    account_id, key = server.account_key("10", allow_manage_key=True)
    sim.config.chunk_delay_ms = 150
    words = " ".join(f"w{i}" for i in range(40))
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": words}], "stream": True}
    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{server.base_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as resp,
    ):
        request_id = resp.headers["request-id"]
        received = b""
        for chunk in resp.iter_raw():
            received += chunk
            if received.count(b"data: ") >= 4:
                break
    # Leaving the block closed the connection mid-stream.
    deadline = time.monotonic() + 5
    while sim.cancelled_streams == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sim.cancelled_streams == 1, "the upstream stream must be cancelled"
    record = {}
    while time.monotonic() < deadline:
        record = HTTP.get(
            f"{server.base_url}/dashboard/record/{request_id}", headers={"Authorization": f"Bearer {key}"}
        ).json()
        if record.get("code") == 0:
            break
        time.sleep(0.05)
    data = record["data"]
    assert data["status"] == "cancelled" and data["http_status"] == 499
    assert data["estimated_tokens"] is True
    assert 0 < data["output_token"] < 40, "billed for what was produced, not for the whole answer"
    assert data["cost"] > 0
    balance = server.admin("GET", f"/admin/accounts/{account_id}").json()
    assert balance["held"] == "0"


def test_first_chunk_is_forwarded_before_the_stream_ends(
    gateway_factory: GatewayFactory, sim: OpenAISim
) -> None:
    server = gateway_factory([sim_channel(sim)])
    _, key = server.account_key()
    sim.config.chunk_delay_ms = 100
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a b c d e f"}], "stream": True}
    started = time.monotonic()
    first = None
    with HTTP.stream(
        "POST",
        f"{server.base_url}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        for chunk in resp.iter_raw():
            if first is None and b"data: " in chunk:
                first = time.monotonic() - started
    total = time.monotonic() - started
    assert first is not None
    assert total - first > 0.5, "chunks arrive as the upstream produces them, not all at the end"
