"""The store against both supported databases: schema, migrations, and every repository statement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.cli import main as cli_main
from omnirelay.store import tables as t
from omnirelay.store.db import create_engine, migrate
from omnirelay.store.repo import Store, UsageRow

TABLES = {"meta", "accounts", "api_keys", "channels", "ledger", "usage_logs", "tasks"}


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield Store(engine)
    finally:
        await engine.dispose()


def usage_row(
    request_id: str, account_id: int, key_id: int, cost: int, *, cost_date: str, **extra: Any
) -> UsageRow:
    values: dict[str, Any] = {
        "request_id": request_id,
        "account_id": account_id,
        "key_id": key_id,
        "api_name": "main",
        "endpoint": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "channel": "sim",
        "status": "ok",
        "http_status": 200,
        "stream": False,
        "input_tokens": 10,
        "cached_input_tokens": 0,
        "cache_write_tokens": 0,
        "output_tokens": 5,
        "reasoning_tokens": 0,
        "requests": 1,
        "estimated": False,
        "cost": cost,
        "latency_ms": 12,
        "first_byte_ms": None,
        "attempts": 1,
        "error": None,
        "created_at": 1_700_000_000,
        "cost_date": cost_date,
    }
    values.update(extra)
    return UsageRow(**values)


def key_values(account_id: int, api_name: str, key_hash: str, **extra: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "account_id": account_id,
        "api_name": api_name,
        "key_hash": key_hash,
        "key_hint": "sk-abcd...wxyz",
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
    values.update(extra)
    return values


async def ledger_rows(store: Store, account_id: int) -> list[tuple[str, int, str | None, int | None]]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            select(t.ledger.c.kind, t.ledger.c.amount, t.ledger.c.request_id, t.ledger.c.key_id)
            .where(t.ledger.c.account_id == account_id)
            .order_by(t.ledger.c.id)
        )
        return [(r.kind, int(r.amount), r.request_id, r.key_id) for r in rows]


async def key_row(store: Store, key_id: int) -> dict[str, Any]:
    return next(k for k in await store.load_keys() if k["id"] == key_id)


async def balance(store: Store, account_id: int) -> int:
    account = await store.get_account(account_id)
    assert account is not None
    return int(account["balance"])


# --- migrations ---------------------------------------------------------------------------------


def _schema_diff(conn: Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), t.metadata))


async def _schema_state(engine: AsyncEngine) -> tuple[set[str], list[str], list[Any]]:
    async with engine.connect() as conn:
        names = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        versions = [r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))]
        diff = await conn.run_sync(_schema_diff)
    return names, versions, diff


async def test_migrate_creates_schema_and_is_idempotent(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        names, versions, diff = await _schema_state(engine)
        assert names == {*TABLES, "alembic_version"}
        assert versions == ["0002"]
        # The migration builds exactly what tables.py declares (columns, types, indexes, constraints).
        assert diff == []

        store = Store(engine)
        await store.set_meta("marker", "kept")
        await migrate(engine)  # a second run is a no-op and keeps data
        names2, versions2, diff2 = await _schema_state(engine)
        assert (names2, versions2, diff2) == (names, ["0002"], [])
        assert await store.get_meta("marker") == "kept"
    finally:
        await engine.dispose()


def test_cli_migrate(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["migrate", "--database-url", database_url]) == 0
    assert cli_main(["migrate", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert out.count("is up to date") == 2

    async def check() -> tuple[set[str], list[str], list[Any]]:
        engine = create_engine(database_url)
        try:
            return await _schema_state(engine)
        finally:
            await engine.dispose()

    names, versions, diff = asyncio.run(check())
    assert names == {*TABLES, "alembic_version"}
    assert versions == ["0002"]
    assert diff == []


def test_create_engine_rejects_unsupported_driver() -> None:
    with pytest.raises(ValueError, match="unsupported database URL driver 'mysql'"):
        create_engine("mysql://root@localhost/x")
    with pytest.raises(ValueError, match="unsupported database URL driver 'sqlite'"):
        create_engine("sqlite:///x.db")


# --- meta ---------------------------------------------------------------------------------------


async def test_meta_get_set(store: Store) -> None:
    assert await store.get_meta("admin_key_hash") is None
    await store.set_meta("admin_key_hash", "a" * 64)
    await store.set_meta("other", "1")
    assert await store.get_meta("admin_key_hash") == "a" * 64
    await store.set_meta("admin_key_hash", "b" * 64)  # overwrite, not a second row
    assert await store.get_meta("admin_key_hash") == "b" * 64
    assert await store.get_meta("other") == "1"
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.meta))).scalar() == 2


# --- accounts and ledger ------------------------------------------------------------------------


async def test_create_account_writes_topup_ledger_row(store: Store) -> None:
    acc = await store.create_account("alice", 5_000_000_000)
    assert acc["name"] == "alice"
    assert acc["balance"] == 5_000_000_000
    loaded = await store.get_account(acc["id"])
    assert loaded == acc
    assert await ledger_rows(store, acc["id"]) == [("topup", 5_000_000_000, None, None)]
    assert await store.ledger_sum(acc["id"]) == 5_000_000_000

    # A zero opening balance moves no money, so it writes no ledger row.
    empty = await store.create_account("bob", 0)
    assert empty["id"] != acc["id"]
    assert await ledger_rows(store, empty["id"]) == []
    assert await store.ledger_sum(empty["id"]) == 0
    assert {a["name"]: a["balance"] for a in await store.load_accounts()} == {
        "alice": 5_000_000_000,
        "bob": 0,
    }
    assert await store.get_account(9999) is None


async def test_topup_updates_balance_and_ledger(store: Store) -> None:
    acc = await store.create_account("alice", 1_000)
    other = await store.create_account("bob", 7)
    assert await store.topup(acc["id"], 2_500) == 3_500
    assert await store.topup(acc["id"], -500) == 3_000  # a correction is a negative topup
    assert await balance(store, acc["id"]) == 3_000
    assert await ledger_rows(store, acc["id"]) == [
        ("topup", 1_000, None, None),
        ("topup", 2_500, None, None),
        ("topup", -500, None, None),
    ]
    assert await store.ledger_sum(acc["id"]) == 3_000
    assert await balance(store, other["id"]) == 7  # untouched


async def test_topup_unknown_account_raises_and_writes_nothing(store: Store) -> None:
    acc = await store.create_account("alice", 1_000)
    with pytest.raises(LookupError):
        await store.topup(acc["id"] + 100, 50)
    async with store.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(t.ledger))).scalar() == 1
    assert await store.ledger_sum(acc["id"] + 100) == 0
    assert await balance(store, acc["id"]) == 1_000


# --- keys ---------------------------------------------------------------------------------------


async def test_key_insert_update_delete(store: Store) -> None:
    acc = await store.create_account("alice", 0)
    key_id = await store.insert_key(key_values(acc["id"], "main", "h" * 64, limit_cost=10))
    row = await key_row(store, key_id)
    assert row == {"id": key_id, **key_values(acc["id"], "main", "h" * 64, limit_cost=10)}
    assert row["allow_save_logs"] is True
    assert row["enabled"] is True

    await store.update_key(key_id, {"api_name": "renamed", "limit_daily_cost": 99, "enabled": False})
    row = await key_row(store, key_id)
    assert (row["api_name"], row["limit_daily_cost"], row["enabled"], row["limit_cost"]) == (
        "renamed",
        99,
        False,
        10,
    )
    await store.delete_key(key_id)
    assert await store.load_keys() == []
    await store.delete_key(key_id)  # deleting a missing key is a no-op


async def test_key_unique_constraints(store: Store) -> None:
    alice = await store.create_account("alice", 0)
    bob = await store.create_account("bob", 0)
    await store.insert_key(key_values(alice["id"], "main", "a" * 64))
    with pytest.raises(IntegrityError):
        await store.insert_key(key_values(alice["id"], "main", "b" * 64))
    # The same name under another account is fine.
    await store.insert_key(key_values(bob["id"], "main", "c" * 64))
    # key_hash is unique across all accounts.
    with pytest.raises(IntegrityError):
        await store.insert_key(key_values(bob["id"], "second", "a" * 64))
    # A key must belong to an existing account (foreign keys are enforced on SQLite too).
    with pytest.raises(IntegrityError):
        await store.insert_key(key_values(bob["id"] + 100, "orphan", "d" * 64))
    second = await store.insert_key(key_values(alice["id"], "second", "e" * 64))
    with pytest.raises(IntegrityError):
        await store.update_key(second, {"api_name": "main"})
    names = sorted((k["account_id"], k["api_name"]) for k in await store.load_keys())
    assert names == [(alice["id"], "main"), (alice["id"], "second"), (bob["id"], "main")]


# --- channels -----------------------------------------------------------------------------------


async def test_channels_upsert_and_delete(store: Store) -> None:
    assert await store.load_channels() == []
    await store.upsert_channel("zeta", {"provider": "openai", "models": ["a"]}, "file", "f" * 64)
    await store.upsert_channel("alpha", {"provider": "openai"}, "api")
    rows = await store.load_channels()
    assert [(r["name"], r["source"], r["file_hash"]) for r in rows] == [
        ("alpha", "api", ""),
        ("zeta", "file", "f" * 64),
    ]
    assert rows[1]["config"] == '{"provider":"openai","models":["a"]}'

    await store.upsert_channel("zeta", {"provider": "openai", "models": ["a", "b"]}, "api")
    rows = await store.load_channels()
    assert len(rows) == 2
    assert (rows[1]["config"], rows[1]["source"], rows[1]["file_hash"]) == (
        '{"provider":"openai","models":["a","b"]}',
        "api",
        "",
    )
    assert await store.delete_channel("alpha") is True
    assert await store.delete_channel("alpha") is False
    assert [r["name"] for r in await store.load_channels()] == ["zeta"]


# --- usage batches ------------------------------------------------------------------------------


async def test_write_usage_batch_moves_money_and_counters(store: Store) -> None:
    acc = await store.create_account("alice", 10_000)
    other = await store.create_account("bob", 1_000)
    # The key last spent 40 on 2024-12-31.
    key_id = await store.insert_key(
        key_values(acc["id"], "main", "a" * 64, current_cost=40, current_date_cost=40, cost_date="2024-12-31")
    )
    bob_key = await store.insert_key(key_values(other["id"], "main", "b" * 64, cost_date="2025-01-01"))

    await store.write_usage_batch([])  # no-op
    await store.write_usage_batch(
        [
            usage_row("r1", acc["id"], key_id, 100, cost_date="2025-01-01"),
            usage_row("r2", acc["id"], key_id, 250, cost_date="2025-01-01"),
            usage_row("r3", acc["id"], key_id, 0, cost_date="2025-01-01", status="error", requests=0),
            usage_row("b1", other["id"], bob_key, 30, cost_date="2025-01-01"),
        ]
    )
    assert await balance(store, acc["id"]) == 10_000 - 350
    assert await balance(store, other["id"]) == 1_000 - 30
    # A failed call (cost 0) is logged but writes no ledger charge.
    assert await ledger_rows(store, acc["id"]) == [
        ("topup", 10_000, None, None),
        ("charge", -100, "r1", key_id),
        ("charge", -250, "r2", key_id),
    ]
    assert await store.ledger_sum(acc["id"]) == 9_650
    assert await store.ledger_sum(other["id"]) == 970
    key = await key_row(store, key_id)
    # New day: the daily counter restarts from this batch's spend; the total keeps counting.
    assert (key["current_cost"], key["current_date_cost"], key["cost_date"]) == (390, 350, "2025-01-01")
    bob = await key_row(store, bob_key)
    assert (bob["current_cost"], bob["current_date_cost"], bob["cost_date"]) == (30, 30, "2025-01-01")

    # Same day: the daily counter adds up.
    await store.write_usage_batch([usage_row("r4", acc["id"], key_id, 50, cost_date="2025-01-01")])
    key = await key_row(store, key_id)
    assert (key["current_cost"], key["current_date_cost"], key["cost_date"]) == (440, 400, "2025-01-01")

    # Next day: reset.
    await store.write_usage_batch([usage_row("r5", acc["id"], key_id, 70, cost_date="2025-01-02")])
    key = await key_row(store, key_id)
    assert (key["current_cost"], key["current_date_cost"], key["cost_date"]) == (510, 70, "2025-01-02")

    # One batch spanning midnight: the later day's spend is what is left in the daily counter.
    await store.write_usage_batch(
        [
            usage_row("r6", acc["id"], key_id, 5, cost_date="2025-01-02"),
            usage_row("r7", acc["id"], key_id, 7, cost_date="2025-01-03"),
            usage_row("r8", acc["id"], key_id, 11, cost_date="2025-01-03"),
        ]
    )
    key = await key_row(store, key_id)
    assert (key["current_cost"], key["current_date_cost"], key["cost_date"]) == (533, 18, "2025-01-03")
    assert await balance(store, acc["id"]) == 10_000 - 350 - 50 - 70 - 23
    assert await store.ledger_sum(acc["id"]) == await balance(store, acc["id"])

    async with store.engine.connect() as conn:
        count = (await conn.execute(select(func.count()).select_from(t.usage_logs))).scalar()
        total = (await conn.execute(select(func.sum(t.usage_logs.c.cost)))).scalar()
    assert (count, total) == (9, 350 + 30 + 50 + 70 + 23)


async def test_write_usage_batch_is_one_transaction(store: Store) -> None:
    acc = await store.create_account("alice", 1_000)
    key_id = await store.insert_key(key_values(acc["id"], "main", "a" * 64))
    await store.write_usage_batch([usage_row("first", acc["id"], key_id, 100, cost_date="2025-01-01")])
    # The second row breaks a NOT NULL column: the whole batch fails, nothing of it lands.
    with pytest.raises(IntegrityError):
        await store.write_usage_batch(
            [
                usage_row("new", acc["id"], key_id, 200, cost_date="2025-01-01"),
                usage_row("bad", acc["id"], key_id, 300, cost_date="2025-01-01", model=None),
            ]
        )
    assert await balance(store, acc["id"]) == 900
    assert await store.ledger_sum(acc["id"]) == 900
    assert await store.get_usage("new") is None
    key = await key_row(store, key_id)
    assert (key["current_cost"], key["current_date_cost"]) == (100, 100)


async def test_a_batch_written_before_is_skipped_on_retry(store: Store) -> None:
    """A commit whose confirmation was lost is retried: stored rows are skipped, the rest written once."""
    acc = await store.create_account("alice", 1_000)
    key_id = await store.insert_key(key_values(acc["id"], "main", "a" * 64))
    first = usage_row("dup", acc["id"], key_id, 100, cost_date="2025-01-01")
    await store.write_usage_batch([first])
    await store.write_usage_batch([first, usage_row("new", acc["id"], key_id, 200, cost_date="2025-01-01")])
    await store.write_usage_batch([first])
    assert await balance(store, acc["id"]) == 700
    assert await store.ledger_sum(acc["id"]) == 700
    key = await key_row(store, key_id)
    assert (key["current_cost"], key["current_date_cost"]) == (300, 300)


async def test_get_usage_round_trips_every_field(store: Store) -> None:
    acc = await store.create_account("alice", 1_000)
    key_id = await store.insert_key(key_values(acc["id"], "main", "a" * 64))
    row = usage_row(
        "req-1",
        acc["id"],
        key_id,
        123,
        cost_date="2025-01-01",
        stream=True,
        estimated=True,
        cached_input_tokens=3,
        cache_write_tokens=2,
        reasoning_tokens=4,
        first_byte_ms=45,
        attempts=2,
        error="upstream 500 then ok",
        channel=None,
    )
    await store.write_usage_batch([row])
    got = await store.get_usage("req-1")
    assert got == row.log_values()
    assert got is not None
    assert got["stream"] is True
    assert got["estimated"] is True
    assert got["channel"] is None
    assert await store.get_usage("missing") is None


async def test_list_usage_pagination_and_time_filters(store: Store) -> None:
    acc = await store.create_account("alice", 1_000)
    other = await store.create_account("bob", 1_000)
    key_id = await store.insert_key(key_values(acc["id"], "main", "a" * 64))
    bob_key = await store.insert_key(key_values(other["id"], "main", "b" * 64))
    rows = [
        usage_row(f"a{i}", acc["id"], key_id, 1, cost_date="2025-01-01", created_at=1000 + i)
        for i in range(5)
    ]
    # Two rows share a second: ties are ordered by request id, newest-first order is stable.
    rows.append(usage_row("a5", acc["id"], key_id, 1, cost_date="2025-01-01", created_at=1004))
    rows.append(usage_row("b0", other["id"], bob_key, 1, cost_date="2025-01-01", created_at=1002))
    await store.write_usage_batch(rows)

    async def ids(**kw: Any) -> tuple[list[str], int]:
        page, total = await store.list_usage(acc["id"], **kw)
        return [r["request_id"] for r in page], total

    assert await ids(offset=0, limit=2) == (["a5", "a4"], 6)
    assert await ids(offset=2, limit=2) == (["a3", "a2"], 6)
    assert await ids(offset=4, limit=2) == (["a1", "a0"], 6)
    assert await ids(offset=6, limit=2) == ([], 6)
    assert await ids(offset=0, limit=100) == (["a5", "a4", "a3", "a2", "a1", "a0"], 6)
    # Bounds are inclusive on both ends.
    assert await ids(offset=0, limit=10, start_time=1001, end_time=1003) == (["a3", "a2", "a1"], 3)
    assert await ids(offset=1, limit=1, start_time=1001, end_time=1003) == (["a2"], 3)
    assert await ids(offset=0, limit=10, start_time=1004) == (["a5", "a4"], 2)
    assert await ids(offset=0, limit=10, end_time=1000) == (["a0"], 1)
    assert await ids(offset=0, limit=10, start_time=2000) == ([], 0)
    page, total = await store.list_usage(other["id"], offset=0, limit=10)
    assert ([r["request_id"] for r in page], total) == (["b0"], 1)
    assert await store.list_usage(other["id"] + 100, offset=0, limit=10) == ([], 0)


async def test_ledger_sum(store: Store) -> None:
    acc = await store.create_account("alice", 1_000)
    key_id = await store.insert_key(key_values(acc["id"], "main", "a" * 64))
    assert await store.ledger_sum(acc["id"]) == 1_000
    await store.topup(acc["id"], 500)
    await store.write_usage_batch(
        [
            usage_row("r1", acc["id"], key_id, 300, cost_date="2025-01-01"),
            usage_row("r2", acc["id"], key_id, 1_400, cost_date="2025-01-01"),
        ]
    )
    # The ledger may go negative exactly as the balance does.
    assert await store.ledger_sum(acc["id"]) == -200
    assert await balance(store, acc["id"]) == -200
    assert await store.ledger_sum(acc["id"] + 1) == 0
