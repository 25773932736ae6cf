"""The durable task engine through the real gateway: image V2 async, webhooks, money, ownership."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from omnirelay.core.tasks.webhooks import SIGNATURE_HEADER, verify
from tests.conftest import GatewayFactory
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.imaging import image_sim_in_thread
from tests.upstreams.replicate.sim import Sim as ReplicateSim
from tests.upstreams.replicate.sim import channel_base_url
from tests.upstreams.threaded import start_in_thread

FAST_TASKS = {"tick_s": 0.05, "poll_interval_s": 0.05, "max_poll_interval_s": 0.2, "webhook_backoff_s": 0.05}


class Receiver:
    """A webhook receiver on loopback that fails its first ``fail_first`` calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._stop: Any = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.calls.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        if len(self.calls) <= self.fail_first:
            return web.Response(status=500)
        return web.Response(text="ok")

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://{host}:{bound}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> Receiver:
        self._stop = start_in_thread(self, name="webhook-receiver")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()


@pytest.fixture
def replicate() -> Iterator[ReplicateSim]:
    sim = ReplicateSim()
    sim.config.polls_before_ready = 3
    with image_sim_in_thread(sim) as running:
        yield running


@pytest.fixture
def server(gateway_factory: GatewayFactory, replicate: ReplicateSim, database_url: str) -> GatewayServer:
    channel = {
        "name": "replicate",
        "provider": "replicate",
        "base_url": channel_base_url(replicate),
        "api_key": "sk-upstream-test",
        "models": ["302ai-sdxl-t2i", "302ai-flux-schnell-t2i"],
    }
    return gateway_factory(
        [channel],
        database_url=database_url,
        tasks=FAST_TASKS,
        image_fetch={"allow_networks": ["127.0.0.0/8"]},
    )


def submit(server: GatewayServer, key: str, query: str = "?run_async=true", **body: Any) -> tuple[int, Any]:
    payload = {"prompt": "a fox", "model": "302ai-sdxl-t2i", **body}
    resp = HTTP.post(
        f"{server.base_url}/302/v2/image/generate{query}",
        json=payload,
        headers={"Authorization": f"Bearer {key}"},
    )
    return resp.status_code, resp.json()


def wait_for(server: GatewayServer, key: str, task_id: str, timeout: float = 15) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task: dict[str, Any] = HTTP.get(
            f"{server.base_url}/302/v2/image/fetch/{task_id}", headers={"Authorization": f"Bearer {key}"}
        ).json()
        if task["status"] in ("completed", "failed"):
            return task
        time.sleep(0.05)
    raise AssertionError(f"task {task_id} did not finish")


def balance(server: GatewayServer, account_id: int) -> tuple[Decimal, Decimal]:
    account = server.admin("GET", f"/admin/accounts/{account_id}").json()
    return Decimal(account["balance"]), Decimal(account["held"])


def test_async_task_completes_and_is_charged_once(server: GatewayServer, replicate: ReplicateSim) -> None:
    account_id, key = server.account_key("1", allow_manage_key=True)
    status, accepted = submit(server, key, n=2)
    assert status == 200 and accepted["status"] == "pending" and accepted["task_id"]
    assert balance(server, account_id)[1] == Decimal("0.02"), "n images are held at submit"
    task = wait_for(server, key, accepted["task_id"])
    assert task["status"] == "completed", task
    assert task["upstream_task_id"] and task["attempts"] >= 3
    assert len(task["image_urls"]) >= 1 and HTTP.get(task["image_urls"][0]).status_code == 200
    submits = [r for r in replicate.requests if r.method == "POST"]
    assert len(submits) == 1, "submitted upstream exactly once"
    spent = Decimal("1") - balance(server, account_id)[0]
    assert spent == Decimal("0.01") * len(task["image_urls"])
    assert balance(server, account_id)[1] == 0
    record = HTTP.get(
        f"{server.base_url}/dashboard/record/{task['ai302_cost_request_ids'][0]}",
        headers={"Authorization": f"Bearer {key}"},
    ).json()["data"]
    assert Decimal(str(record["cost"])) == spent and record["endpoint"] == "task:image_v2"


def test_failed_task_is_refunded(server: GatewayServer, replicate: ReplicateSim) -> None:
    account_id, key = server.account_key("1")
    replicate.config.fail_jobs_next = 1
    _, accepted = submit(server, key)
    task = wait_for(server, key, accepted["task_id"])
    assert task["status"] == "failed" and task["error"]["message"]
    assert balance(server, account_id) == (Decimal("1"), Decimal("0"))


def test_tasks_belong_to_their_account(server: GatewayServer) -> None:
    _, key = server.account_key()
    _, other = server.account_key()
    _, accepted = submit(server, key)
    resp = HTTP.get(
        f"{server.base_url}/302/v2/image/fetch/{accepted['task_id']}",
        headers={"Authorization": f"Bearer {other}"},
    )
    assert resp.status_code == 404
    assert (
        HTTP.get(
            f"{server.base_url}/302/v2/image/fetch/nope", headers={"Authorization": f"Bearer {key}"}
        ).status_code
        == 404
    )


def task_row(database_url: str, task_id: str) -> dict[str, Any]:
    from sqlalchemy import select

    from omnirelay.store import tables as t
    from omnirelay.store.db import create_engine

    async def read() -> dict[str, Any]:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as conn:
                row = (await conn.execute(select(t.tasks).where(t.tasks.c.id == task_id))).first()
                assert row is not None
                return dict(row._mapping)
        finally:
            await engine.dispose()

    return asyncio.run(read())


def test_webhook_is_signed_retried_and_recorded(server: GatewayServer, database_url: str) -> None:
    account_id, key = server.account_key("1", allow_manage_key=True)
    secret = server.admin("GET", f"/admin/accounts/{account_id}").json()["webhook_secret"]
    with Receiver(fail_first=2) as receiver:
        status, accepted = submit(server, key, query=f"?webhook={receiver.url}")
        assert status == 200
        deadline = time.monotonic() + 15
        while len(receiver.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(receiver.calls) == 3, "two failures, then a delivery"
    headers, body = receiver.calls[-1]
    assert verify(secret, body, headers[SIGNATURE_HEADER.lower()])
    assert not verify("wrong-secret", body, headers[SIGNATURE_HEADER.lower()])
    import orjson

    payload = orjson.loads(body)
    assert payload["task_id"] == accepted["task_id"] and payload["status"] == "completed"
    assert payload["result"]["image_urls"]
    deadline = time.monotonic() + 5
    row = task_row(database_url, accepted["task_id"])
    while row["webhook_status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.05)
        row = task_row(database_url, accepted["task_id"])
    assert (row["webhook_status"], row["webhook_attempts"]) == ("delivered", 3)


def test_private_webhook_is_refused_at_submit(server: GatewayServer) -> None:
    _, key = server.account_key()
    status, payload = submit(server, key, query="?webhook=http://10.0.0.8/hook")
    assert status == 422 and "10.0.0.8" in payload["error"]["message"]
    status, payload = submit(server, key, query="?webhook=http://169.254.169.254/latest")
    assert status == 422


def test_insufficient_balance_refuses_the_task(server: GatewayServer, replicate: ReplicateSim) -> None:
    _, key = server.account_key("0")
    status, payload = submit(server, key)
    assert status == 402 and payload["error"]["err_code"] == -10004
    assert replicate.requests == []
