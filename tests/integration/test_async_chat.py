"""Async chat: submit with ?async=true, fetch with /v1/async_result, callbacks, money once."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import orjson
import pytest

from omnirelay.core.tasks.webhooks import SIGNATURE_HEADER, verify
from tests.conftest import GatewayFactory, sim_channel
from tests.integration.test_tasks import FAST_TASKS, Receiver
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.openai import OpenAISim

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "later please"}]}


@pytest.fixture
def server(gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str) -> GatewayServer:
    return gateway_factory(
        [sim_channel(sim)],
        database_url=database_url,
        tasks=FAST_TASKS,
        image_fetch={"allow_networks": ["127.0.0.0/8"]},
    )


def result(server: GatewayServer, key: str, task_id: str, extract: bool = False) -> dict[str, Any]:
    query = f"task_id={task_id}" + ("&llm_content_extract=true" if extract else "")
    resp = HTTP.get(f"{server.base_url}/v1/async_result?{query}", headers={"Authorization": f"Bearer {key}"})
    data: dict[str, Any] = resp.json()
    data["_http"] = resp.status_code
    return data


def wait(server: GatewayServer, key: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = result(server, key, task_id, extract=True)
        if found["status"] in ("completed", "failed"):
            return found
        time.sleep(0.05)
    raise AssertionError("async chat did not finish")


def test_async_chat_round_trip_and_billing(server: GatewayServer, sim: OpenAISim) -> None:
    account_id, key = server.account_key("1")
    resp = HTTP.post(
        f"{server.base_url}/v1/chat/completions?async=true",
        json=BODY,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["task_id"]
    done = wait(server, key, task_id)
    assert done["status"] == "completed" and done["status_code"] == 200 and done["err"] == ""
    assert done["data"]["object"] == "chat.completion"
    assert done["extracted_content"] == "Echo: later please"
    assert len(sim.chat_requests) == 1 and sim.chat_requests[0].json["stream"] is False
    usage = done["data"]["usage"]
    expected = (
        Decimal(usage["prompt_tokens"]) * Decimal("0.15")
        + Decimal(usage["completion_tokens"]) * Decimal("0.60")
    ) / 1_000_000
    balance = Decimal(server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"])
    assert abs((Decimal(1) - balance) - expected) <= Decimal("0.000000002")


def test_async_chat_failure_is_refunded(server: GatewayServer, sim: OpenAISim) -> None:
    account_id, key = server.account_key("1")
    sim.config.fail_next = [400]
    resp = HTTP.post(
        f"{server.base_url}/v1/chat/completions?async=true",
        json=BODY,
        headers={"Authorization": f"Bearer {key}"},
    )
    done = wait(server, key, resp.json()["task_id"])
    assert done["status"] == "failed" and done["status_code"] == 400 and done["err"]
    assert server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"] == "1"


def test_async_chat_callback_and_ownership(server: GatewayServer) -> None:
    account_id, key = server.account_key("1")
    _, other = server.account_key("1")
    secret = server.admin("GET", f"/admin/accounts/{account_id}").json()["webhook_secret"]
    with Receiver() as receiver:
        resp = HTTP.post(
            f"{server.base_url}/v1/chat/completions?async=true&callback={receiver.url}",
            json=BODY,
            headers={"Authorization": f"Bearer {key}"},
        )
        task_id = resp.json()["task_id"]
        deadline = time.monotonic() + 10
        while not receiver.calls and time.monotonic() < deadline:
            time.sleep(0.05)
    headers, body = receiver.calls[0]
    assert verify(secret, body, headers[SIGNATURE_HEADER.lower()])
    assert orjson.loads(body)["extracted_content"] == "Echo: later please"
    assert result(server, other, task_id)["_http"] == 404
    bad = HTTP.post(
        f"{server.base_url}/v1/chat/completions?callback=http://x",
        json=BODY,
        headers={"Authorization": f"Bearer {key}"},
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "callback"
