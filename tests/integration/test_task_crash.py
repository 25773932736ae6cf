"""Crash and scale-out tests: real gateway processes, SIGKILL, restarts, two workers on PostgreSQL.

After a kill -9 with tasks in every state, a restarted gateway brings every task to the right end
state exactly once: one upstream submission each, and the money settled once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import func, select

from omnirelay.store import tables as t
from omnirelay.store.db import create_engine
from tests.integration.test_cli import Proc
from tests.upstreams.imaging import image_sim_in_thread
from tests.upstreams.replicate.sim import Sim as ReplicateSim
from tests.upstreams.replicate.sim import channel_base_url

ADMIN = {"Authorization": "Bearer sk-op"}
FAST = {"tick_s": 0.05, "poll_interval_s": 0.05, "max_poll_interval_s": 0.2, "lease_s": 2.0}


@pytest.fixture
def replicate() -> Iterator[ReplicateSim]:
    with image_sim_in_thread(ReplicateSim()) as sim:
        yield sim


def start(tmp_path: Path, sim: ReplicateSim, database_url: str, *, worker: bool = True) -> Proc:
    config = tmp_path / f"omnirelay-{time.monotonic_ns()}.yaml"
    channel = {
        "name": "replicate",
        "provider": "replicate",
        "base_url": channel_base_url(sim),
        "api_key": "sk-upstream-test",
        "models": ["302ai-sdxl-t2i"],
    }
    config.write_text(yaml.safe_dump({"channels": [channel], "tasks": {**FAST, "worker": worker}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIRELAY_")}
    env["OMNIRELAY_ADMIN_KEY"] = "sk-op"
    return Proc(["--config", str(config), "--data-dir", str(tmp_path), "--database-url", database_url], env)


def kill(proc: Proc) -> None:
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(timeout=10)


def account(proc: Proc, balance: str = "10") -> tuple[int, str]:
    created = httpx.post(
        proc.base + "/admin/accounts", json={"name": "a", "balance": balance}, headers=ADMIN
    ).json()
    key = httpx.post(
        f"{proc.base}/admin/accounts/{created['id']}/api_keys", json={"api_name": "k"}, headers=ADMIN
    ).json()["api_key"]
    return int(created["id"]), str(key)


def submit(proc: Proc, key: str, prompt: str) -> str:
    resp = httpx.post(
        f"{proc.base}/302/v2/image/generate?run_async=true",
        json={"prompt": prompt, "model": "302ai-sdxl-t2i"},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["task_id"])


def status(proc: Proc, key: str, task_id: str) -> dict[str, Any]:
    resp = httpx.get(
        f"{proc.base}/302/v2/image/fetch/{task_id}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    data: dict[str, Any] = resp.json()
    return data


def wait_all(proc: Proc, key: str, ids: list[str], states: set[str], timeout: float = 30) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    seen: dict[str, str] = {}
    while time.monotonic() < deadline:
        seen = {i: status(proc, key, i)["status"] for i in ids}
        if set(seen.values()) <= states:
            return seen
        time.sleep(0.1)
    raise AssertionError(f"tasks did not reach {states}: {seen}")


def submissions(sim: ReplicateSim) -> list[str]:
    return [str((r.json or {}).get("input", {}).get("prompt")) for r in sim.requests if r.method == "POST"]


async def _money(database_url: str, account_id: int) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            charges = (
                await conn.execute(
                    select(func.count(), func.coalesce(func.sum(t.ledger.c.amount), 0)).where(
                        t.ledger.c.account_id == account_id, t.ledger.c.kind == "charge"
                    )
                )
            ).one()
            logs = (
                await conn.execute(
                    select(func.count(), func.count(func.distinct(t.usage_logs.c.request_id))).where(
                        t.usage_logs.c.account_id == account_id
                    )
                )
            ).one()
            balance = (
                await conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == account_id))
            ).scalar()
            unsettled = (
                await conn.execute(select(func.count()).where(t.tasks.c.settled.is_(False)))
            ).scalar()
        return {
            "charges": int(charges[0]),
            "charged": -int(charges[1]),
            "logs": int(logs[0]),
            "distinct_logs": int(logs[1]),
            "balance": int(balance or 0),
            "unsettled": int(unsettled or 0),
        }
    finally:
        await engine.dispose()


def money(database_url: str, account_id: int) -> dict[str, int]:
    return asyncio.run(_money(database_url, account_id))


def test_kill_9_with_tasks_in_every_state(tmp_path: Path, replicate: ReplicateSim, database_url: str) -> None:
    # 1. An API-only process writes tasks that nobody works on yet (state: pending), then dies.
    api_only = start(tmp_path, replicate, database_url, worker=False)
    account_id, key = account(api_only)
    pending = [submit(api_only, key, f"pending-{i}") for i in range(3)]
    kill(api_only)
    assert submissions(replicate) == []

    # 2. A worker takes them and more; the upstream keeps them running (state: processing)...
    replicate.config.polls_before_ready = 10_000
    worker = start(tmp_path, replicate, database_url)
    processing = [submit(worker, key, f"processing-{i}") for i in range(3)]
    wait_all(worker, key, pending + processing, {"processing"})
    # ...and one is caught in the middle of its submission (state: submitting).
    replicate.config.latency_ms = 3_000
    stuck = submit(worker, key, "submitting-0")
    deadline = time.monotonic() + 10
    while "submitting-0" not in submissions(replicate) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "submitting-0" in submissions(replicate)
    kill(worker)

    # 3. Restart: everything reaches its end state, exactly once.
    replicate.config.latency_ms = 0
    replicate.config.polls_before_ready = 1
    restarted = start(tmp_path, replicate, database_url)
    try:
        final = wait_all(restarted, key, pending + processing + [stuck], {"completed", "failed"})
    finally:
        restarted.stop()
    assert all(final[i] == "completed" for i in pending + processing)
    assert final[stuck] == "failed", "a possibly-submitted task is never sent again"
    sent = submissions(replicate)
    for prompt in (
        [f"pending-{i}" for i in range(3)] + [f"processing-{i}" for i in range(3)] + ["submitting-0"]
    ):
        assert sent.count(prompt) == 1, (prompt, sent)
    books = money(database_url, account_id)
    assert books["unsettled"] == 0
    assert books["charges"] == 6 and books["logs"] == 7 and books["distinct_logs"] == 7
    assert books["balance"] == 10_000_000_000 - books["charged"]
    assert books["charged"] == 6 * 10_000_000  # 0.01 USD per image, six images


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_processes_share_the_work_on_postgresql(
    tmp_path: Path, replicate: ReplicateSim, database_url: str
) -> None:
    replicate.config.polls_before_ready = 3
    first = start(tmp_path, replicate, database_url)
    # Keys are cached per process: the second process starts after the key exists.
    account_id, key = account(first)
    second = start(tmp_path, replicate, database_url)
    try:
        ids = [submit(first if i % 2 else second, key, f"job-{i}") for i in range(16)]
        final = wait_all(first, key, ids, {"completed", "failed"}, timeout=60)
    finally:
        first.stop()
        second.stop()
    assert set(final.values()) == {"completed"}
    sent = submissions(replicate)
    assert sorted(sent) == sorted(f"job-{i}" for i in range(16)), "each job submitted exactly once"
    books = money(database_url, account_id)
    assert books["charges"] == 16 and books["distinct_logs"] == 16 and books["logs"] == 16
    assert books["unsettled"] == 0
