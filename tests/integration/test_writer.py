"""The batched usage writer over a real store: when it writes, how it retries, that it never writes twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.store import tables as t
from omnirelay.store.db import create_engine, migrate
from omnirelay.store.repo import Store, UsageRow
from omnirelay.store.writer import UsageWriter

COST = 10  # nanos charged per row


class RecordingStore(Store):
    """A real store that records each committed batch, and can fail or stall on demand."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self.batches: list[list[str]] = []
        self.attempts = 0
        self.fail_next = 0
        self.delay_after_commit = 0.0
        self.committed = asyncio.Event()

    async def write_usage_batch(self, rows: Sequence[UsageRow]) -> None:
        self.attempts += 1
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database went away")
        await super().write_usage_batch(rows)
        self.batches.append([r.request_id for r in rows])
        self.committed.set()
        if self.delay_after_commit:
            # The commit is done but the caller has not heard back yet (a slow acknowledgement).
            await asyncio.sleep(self.delay_after_commit)


@dataclass
class Env:
    store: RecordingStore
    account_id: int
    key_id: int

    def row(self, request_id: str) -> UsageRow:
        return UsageRow(
            request_id=request_id,
            account_id=self.account_id,
            key_id=self.key_id,
            api_name="main",
            endpoint="/v1/chat/completions",
            model="gpt-4o-mini",
            channel="sim",
            status="ok",
            http_status=200,
            stream=False,
            input_tokens=1,
            cached_input_tokens=0,
            cache_write_tokens=0,
            output_tokens=1,
            reasoning_tokens=0,
            requests=1,
            estimated=False,
            cost=COST,
            latency_ms=1,
            first_byte_ms=None,
            attempts=1,
            error=None,
            created_at=1_700_000_000,
            cost_date="2025-01-01",
        )

    def writer(self, *, interval: float = 60.0, batch_size: int = 100) -> UsageWriter:
        return UsageWriter(self.store, flush_interval_s=interval, batch_size=batch_size)

    async def logged_ids(self) -> list[str]:
        async with self.store.engine.connect() as conn:
            rows = await conn.execute(select(t.usage_logs.c.request_id).order_by(t.usage_logs.c.request_id))
            return [r[0] for r in rows]

    async def money(self) -> tuple[int, int, int, int]:
        """(balance, ledger charge count, key current_cost, key current_date_cost) in the database."""
        account = await self.store.get_account(self.account_id)
        assert account is not None
        async with self.store.engine.connect() as conn:
            charges = (
                await conn.execute(
                    select(func.count()).select_from(t.ledger).where(t.ledger.c.kind == "charge")
                )
            ).scalar()
        key = next(k for k in await self.store.load_keys() if k["id"] == self.key_id)
        return int(account["balance"]), int(charges or 0), key["current_cost"], key["current_date_cost"]

    async def assert_written_once(self, ids: list[str]) -> None:
        assert await self.logged_ids() == sorted(ids)
        n = len(ids)
        assert await self.money() == (10_000 - n * COST, n, n * COST, n * COST)
        committed = [rid for batch in self.store.batches for rid in batch]
        assert sorted(committed) == sorted(ids)


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = create_engine(database_url)
    await migrate(engine)
    store = RecordingStore(engine)
    account = await store.create_account("alice", 10_000)
    key_id = await store.insert_key(
        {
            "account_id": account["id"],
            "api_name": "main",
            "key_hash": "a" * 64,
            "key_hint": "sk-aaaa...aaaa",
            "allow_save_logs": True,
            "allow_manage_key": False,
            "allow_custom_model": False,
            "limit_cost": 0,
            "current_cost": 0,
            "limit_daily_cost": 0,
            "current_date_cost": 0,
            "cost_date": "2025-01-01",
            "expired_on": 0,
            "enabled": True,
            "created_at": 1_700_000_000,
        }
    )
    try:
        yield Env(store, account["id"], key_id)
    finally:
        await engine.dispose()


async def wait_until(cond: Callable[[], bool], seconds: float = 5.0) -> None:
    step = 0.005
    for _ in range(int(seconds / step)):
        if cond():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"condition not met within {seconds} s")


async def test_flush_writes_pending_rows(env: Env) -> None:
    writer = env.writer()
    ids = ["r0", "r1", "r2"]
    for rid in ids:
        writer.submit(env.row(rid))
    assert writer.pending == 3
    assert await env.logged_ids() == []  # submit alone writes nothing
    await writer.flush()
    assert (writer.pending, writer.written, writer.failures) == (0, 3, 0)
    assert env.store.batches == [ids]
    await env.assert_written_once(ids)
    await writer.flush()  # nothing pending: no empty transaction
    assert env.store.attempts == 1


async def test_flush_splits_rows_into_batches(env: Env) -> None:
    writer = env.writer(batch_size=4)
    ids = [f"r{i:02d}" for i in range(10)]
    for rid in ids:
        writer.submit(env.row(rid))
    await writer.flush()
    assert env.store.batches == [ids[0:4], ids[4:8], ids[8:10]]
    assert writer.written == 10
    await env.assert_written_once(ids)


async def test_batch_size_wakes_the_writer(env: Env) -> None:
    writer = env.writer(interval=60.0, batch_size=4)
    writer.start()
    try:
        for rid in ["r0", "r1", "r2"]:
            writer.submit(env.row(rid))
        await asyncio.sleep(0.1)
        assert env.store.attempts == 0  # below batch_size and long before the interval
        writer.submit(env.row("r3"))
        await wait_until(lambda: writer.written == 4)
        assert env.store.batches == [["r0", "r1", "r2", "r3"]]
        await env.assert_written_once(["r0", "r1", "r2", "r3"])
    finally:
        await writer.close()
    assert env.store.attempts == 1


async def test_interval_writes_rows(env: Env) -> None:
    writer = env.writer(interval=0.05, batch_size=1000)
    writer.start()
    try:
        writer.submit(env.row("r0"))
        writer.submit(env.row("r1"))
        await wait_until(lambda: writer.written == 2, seconds=2.0)
        writer.submit(env.row("r2"))
        await wait_until(lambda: writer.written == 3, seconds=2.0)
        assert env.store.batches == [["r0", "r1"], ["r2"]]
    finally:
        await writer.close()
    await env.assert_written_once(["r0", "r1", "r2"])


async def test_close_flushes_rows(env: Env) -> None:
    writer = env.writer(interval=60.0, batch_size=100)
    writer.start()
    ids = [f"r{i}" for i in range(5)]
    for rid in ids:
        writer.submit(env.row(rid))
    await asyncio.sleep(0.05)
    assert env.store.attempts == 0
    await writer.close()
    assert writer.pending == 0
    await env.assert_written_once(ids)
    # Closing a writer that never started still flushes.
    other = env.writer()
    other.submit(env.row("late"))
    await other.close()
    await env.assert_written_once([*ids, "late"])


async def test_failed_write_keeps_rows_and_retries(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    writer = env.writer(batch_size=2)
    env.store.fail_next = 1
    for rid in ["r0", "r1", "r2"]:
        writer.submit(env.row(rid))
    with caplog.at_level(logging.ERROR, logger="omnirelay.writer"):
        await writer.flush()
    assert "usage batch of 2 rows not written; will retry" in caplog.text
    # The first batch failed: the flush stops there, every row is kept, nothing was written.
    assert (writer.pending, writer.written, writer.failures) == (3, 0, 1)
    assert await env.logged_ids() == []
    assert await env.money() == (10_000, 0, 0, 0)
    await writer.flush()
    assert (writer.pending, writer.written, writer.failures) == (0, 3, 1)
    assert env.store.batches == [["r0", "r1"], ["r2"]]
    await env.assert_written_once(["r0", "r1", "r2"])


async def test_background_task_retries_until_written(env: Env) -> None:
    writer = env.writer(interval=0.02, batch_size=100)
    env.store.fail_next = 2
    writer.start()
    try:
        for rid in ["r0", "r1"]:
            writer.submit(env.row(rid))
        await wait_until(lambda: writer.written == 2, seconds=3.0)
        assert writer.failures == 2
        writer.submit(env.row("r2"))
        await wait_until(lambda: writer.written == 3, seconds=3.0)
    finally:
        await writer.close()
    assert env.store.batches == [["r0", "r1"], ["r2"]]
    await env.assert_written_once(["r0", "r1", "r2"])


async def test_close_retries_a_failed_write(env: Env) -> None:
    writer = env.writer()
    env.store.fail_next = 1
    writer.submit(env.row("r0"))
    await writer.close()  # the first flush fails, the second try after a pause succeeds
    assert (writer.pending, writer.written, writer.failures) == (0, 1, 1)
    await env.assert_written_once(["r0"])


async def test_rows_submitted_during_a_write_are_written_once(env: Env) -> None:
    writer = env.writer(batch_size=100)
    env.store.delay_after_commit = 0.05
    for rid in ["r0", "r1"]:
        writer.submit(env.row(rid))
    flushing = asyncio.create_task(writer.flush())
    await env.store.committed.wait()
    writer.submit(env.row("r2"))  # arrives while the first batch is in flight
    await flushing
    await writer.flush()
    assert env.store.batches == [["r0", "r1"], ["r2"]]
    assert (writer.pending, writer.written) == (0, 3)
    await env.assert_written_once(["r0", "r1", "r2"])


async def test_close_during_an_in_flight_write_writes_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    writer = env.writer(interval=60.0, batch_size=2)
    env.store.delay_after_commit = 0.2
    writer.start()
    writer.submit(env.row("r0"))
    writer.submit(env.row("r1"))  # reaches batch_size: the task starts writing
    await env.store.committed.wait()
    with caplog.at_level(logging.ERROR, logger="omnirelay.writer"):
        await writer.close()  # shutdown lands while the committed batch is being acknowledged
    assert caplog.text == ""
    assert (writer.pending, writer.written, writer.failures) == (0, 2, 0)
    await env.assert_written_once(["r0", "r1"])
