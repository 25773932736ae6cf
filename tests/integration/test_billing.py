"""Billing and the key registry over a real store (SQLite and PostgreSQL): the money path end to end."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text

from omnirelay.core import billing as billing_module
from omnirelay.core import keys as keys_module
from omnirelay.core.accounts import AccountState, KeyState, utc_day
from omnirelay.core.billing import Billing, CallRecord, Hold
from omnirelay.core.keys import KeyRegistry, KeySettings, parse_key_settings
from omnirelay.core.pricing import Price
from omnirelay.core.usage import Usage
from omnirelay.errors import (
    InsufficientBalance,
    InvalidRequest,
    KeyCostLimit,
    KeyDailyLimit,
    KeyExpired,
    MissingKey,
    NotFound,
    Unauthenticated,
)
from omnirelay.store import tables as t
from omnirelay.store.db import create_engine, migrate
from omnirelay.store.repo import Store
from omnirelay.store.writer import UsageWriter

# 1 nano per input token, 2 nanos per output token.
PRICE = Price(input=1_000_000, output=2_000_000)


def used(input_tokens: int = 0, output_tokens: int = 0) -> Usage:
    return Usage(input_uncached=input_tokens, output=output_tokens)


@dataclass
class Env:
    store: Store
    writer: UsageWriter
    billing: Billing
    keys: KeyRegistry
    n: int = 0

    def rec(self, **extra: Any) -> CallRecord:
        self.n += 1
        return CallRecord(f"req-{self.n:04d}", "/v1/chat/completions", "sim-model", **extra)

    def settle(self, hold: Hold, cost: int | None) -> int:
        """Settle at PRICE with ``cost`` input tokens (so ``cost`` nanos); ``None`` is a failed call."""
        if cost is None:
            return self.billing.settle(hold, PRICE, None, self.rec(status="error", http_status=502))
        return self.billing.settle(hold, PRICE, used(cost), self.rec())

    async def account_with_key(self, balance: int, **settings: Any) -> tuple[AccountState, KeyState, str]:
        account = await self.keys.create_account(f"acct{len(self.keys.accounts)}", balance)
        key, clear = await self.keys.create_key(account.id, KeySettings(api_name="main", **settings))
        return account, key, clear

    async def db_balance(self, account_id: int) -> int:
        row = await self.store.get_account(account_id)
        assert row is not None
        return int(row["balance"])

    async def db_key(self, key_id: int) -> dict[str, Any]:
        return next(k for k in await self.store.load_keys() if k["id"] == key_id)

    async def reloaded(self) -> KeyRegistry:
        fresh = KeyRegistry(self.store)
        await fresh.load()
        return fresh


@pytest.fixture
async def env(database_url: str) -> AsyncIterator[Env]:
    engine = create_engine(database_url)
    await migrate(engine)
    store = Store(engine)
    writer = UsageWriter(store, flush_interval_s=60.0, batch_size=500)
    try:
        yield Env(store, writer, Billing(writer, default_output_hold_tokens=1000), KeyRegistry(store))
    finally:
        await writer.close()
        await engine.dispose()


@pytest.fixture
def day(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """A settable UTC day for billing and key creation."""
    current = SimpleNamespace(value="2030-01-01")

    def fake_utc_day(now: float | None = None) -> str:
        return str(current.value)

    monkeypatch.setattr(billing_module, "utc_day", fake_utc_day)
    monkeypatch.setattr(keys_module, "utc_day", fake_utc_day)
    return current


# --- accounts and keys --------------------------------------------------------------------------


async def test_create_account_and_key_through_registry(env: Env) -> None:
    account = await env.keys.create_account("alice", 1_000)
    assert (account.balance, account.held, account.available) == (1_000, 0, 1_000)
    assert await env.db_balance(account.id) == 1_000
    assert await env.store.ledger_sum(account.id) == 1_000

    key, clear = await env.keys.create_key(account.id, KeySettings(api_name="main", limit_cost=500))
    assert clear.startswith("sk-")
    assert key.key_hash == hashlib.sha256(clear.encode()).hexdigest()
    assert key.key_hint == f"{clear[:7]}...{clear[-4:]}"
    assert (key.current_cost, key.current_date_cost, key.cost_date) == (0, 0, utc_day())
    assert env.keys.authenticate(clear) is key
    assert env.keys.key_named(account.id, "main") is key
    assert env.keys.keys_of(account.id) == [key]
    row = await env.db_key(key.id)
    assert (row["account_id"], row["api_name"], row["key_hash"], row["limit_cost"], row["enabled"]) == (
        account.id,
        "main",
        key.key_hash,
        500,
        True,
    )

    with pytest.raises(InvalidRequest) as dup:
        await env.keys.create_key(account.id, KeySettings(api_name="main"))
    assert dup.value.param == "api_name"
    with pytest.raises(NotFound):
        await env.keys.create_key(account.id + 100, KeySettings(api_name="x"))

    assert (await env.keys.topup(account.id, 250)).balance == 1_250
    assert await env.db_balance(account.id) == 1_250
    with pytest.raises(NotFound):
        await env.keys.topup(account.id + 100, 5)
    assert await env.store.ledger_sum(account.id) == 1_250

    fresh = await env.reloaded()
    assert fresh.accounts[account.id].balance == 1_250
    again = fresh.authenticate(clear)
    assert (again.id, again.api_name, again.limit_cost, again.key_hash) == (key.id, "main", 500, key.key_hash)


async def test_authenticate_errors(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    account, key, clear = await env.account_with_key(1_000)
    for missing in (None, ""):
        with pytest.raises(MissingKey) as exc:
            env.keys.authenticate(missing)
        assert (exc.value.err_code, exc.value.http_status, exc.value.code) == (-10001, 401, "missing_api_key")
    with pytest.raises(Unauthenticated) as bad:
        env.keys.authenticate(clear + "x")
    assert type(bad.value) is Unauthenticated
    assert (bad.value.err_code, bad.value.http_status, bad.value.code) == (-10001, 401, "invalid_api_key")

    expires = 2_000_000_000
    soon, soon_clear = await env.keys.create_key(account.id, KeySettings(api_name="soon", expired_on=expires))
    monkeypatch.setattr(keys_module, "time", SimpleNamespace(time=lambda: expires - 1))
    assert env.keys.authenticate(soon_clear) is soon
    monkeypatch.setattr(keys_module, "time", SimpleNamespace(time=lambda: expires))
    with pytest.raises(KeyExpired) as expired:
        env.keys.authenticate(soon_clear)
    assert (expired.value.err_code, expired.value.http_status, expired.value.code) == (
        -10005,
        401,
        "api_key_expired",
    )
    assert env.keys.authenticate(clear) is key  # expired_on 0 never expires
    monkeypatch.undo()

    # A key disabled in the database is refused once loaded.
    await env.store.update_key(key.id, {"enabled": False})
    fresh = await env.reloaded()
    with pytest.raises(Unauthenticated) as disabled:
        fresh.authenticate(clear)
    assert type(disabled.value) is Unauthenticated

    # A deleted key is gone from memory and the database.
    await env.keys.delete_key(key)
    with pytest.raises(Unauthenticated):
        env.keys.authenticate(clear)
    assert [k["api_name"] for k in await env.store.load_keys()] == ["soon"]


async def test_keys_are_stored_only_as_hashes(env: Env) -> None:
    account, key, clear = await env.account_with_key(10_000)
    second, second_clear = await env.keys.create_key(account.id, KeySettings(api_name="second"))
    env.settle(env.billing.reserve(key, 100), 40)
    env.settle(env.billing.reserve(second, 100), None)
    await env.writer.flush()
    await env.store.set_meta("admin_key_hash", hashlib.sha256(b"operator").hexdigest())

    async with env.store.engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
        cells: list[str] = []
        for name in names:
            for row in await conn.execute(text(f'SELECT * FROM "{name}"')):
                cells.extend(str(value) for value in row)
    assert {"api_keys", "usage_logs", "ledger", "accounts", "meta", "channels"} <= set(names)
    assert len(cells) > 50
    for secret in (clear, second_clear):
        assert not [c for c in cells if secret in c]
        # Not even the part the hint leaves out.
        assert not [c for c in cells if secret[7:-4] in c]
        assert hashlib.sha256(secret.encode()).hexdigest() in cells


# --- reserve and settle -------------------------------------------------------------------------


async def test_reserve_settle_release_arithmetic(env: Env) -> None:
    account, key, _ = await env.account_with_key(1_000)
    other = await env.keys.create_account("other", 50)

    h1 = env.billing.reserve(key, 300)
    assert (h1.amount, h1.open, h1.day) == (300, True, utc_day())
    assert (account.balance, account.held, account.available, key.held) == (1_000, 300, 700, 300)
    h2 = env.billing.reserve(key, 500)
    assert (account.balance, account.held, account.available, key.held) == (1_000, 800, 200, 800)

    # 100 input tokens at 1 nano + 50 output tokens at 2 nanos = 200.
    assert env.billing.settle(h1, PRICE, used(100, 50), env.rec()) == 200
    assert (account.balance, account.held, key.held) == (800, 500, 500)
    assert (key.current_cost, key.current_date_cost) == (200, 200)

    # A failed call releases its hold and charges nothing.
    assert env.settle(h2, None) == 0
    assert (account.balance, account.held, key.held, key.current_cost) == (800, 0, 0, 200)

    # No price (a free model) charges nothing even with usage.
    h3 = env.billing.reserve(key, 0)
    assert env.billing.settle(h3, None, used(1_000, 1_000), env.rec()) == 0
    # The real cost is charged even when it exceeds the hold.
    h4 = env.billing.reserve(key, 10)
    assert env.settle(h4, 30) == 30
    assert (account.balance, account.held, key.current_cost, key.current_date_cost) == (770, 0, 230, 230)
    assert other.balance == 50

    assert env.writer.pending == 4
    await env.writer.flush()
    assert await env.db_balance(account.id) == 770
    assert await env.store.ledger_sum(account.id) == 770
    assert await env.db_balance(other.id) == 50
    row = await env.db_key(key.id)
    assert (row["current_cost"], row["current_date_cost"], row["cost_date"]) == (230, 230, utc_day())

    first = await env.store.get_usage("req-0001")
    assert first is not None
    assert (first["cost"], first["input_tokens"], first["output_tokens"], first["requests"]) == (
        200,
        100,
        50,
        1,
    )
    assert (first["status"], first["http_status"], first["account_id"], first["key_id"]) == (
        "ok",
        200,
        account.id,
        key.id,
    )
    failed = await env.store.get_usage("req-0002")
    assert failed is not None
    assert (failed["cost"], failed["requests"], failed["status"], failed["http_status"]) == (
        0,
        0,
        "error",
        502,
    )
    _, total = await env.store.list_usage(account.id, offset=0, limit=10)
    assert total == 4


async def test_settle_twice_raises(env: Env) -> None:
    account, key, _ = await env.account_with_key(1_000)
    hold = env.billing.reserve(key, 100)
    assert env.settle(hold, 60) == 60
    with pytest.raises(RuntimeError, match="settled twice"):
        env.settle(hold, 60)
    with pytest.raises(RuntimeError, match="settled twice"):
        env.settle(hold, None)
    assert (account.balance, account.held, key.held, key.current_cost) == (940, 0, 0, 60)
    assert env.writer.pending == 1
    await env.writer.flush()
    assert await env.db_balance(account.id) == 940


async def test_daily_rollover(env: Env, day: SimpleNamespace) -> None:
    account, key, _ = await env.account_with_key(10_000)
    assert key.cost_date == "2030-01-01"
    env.settle(env.billing.reserve(key, 100), 200)
    assert (key.current_cost, key.current_date_cost, key.cost_date) == (200, 200, "2030-01-01")

    day.value = "2030-01-02"
    hold = env.billing.reserve(key, 100)  # the first reservation of a day starts its counter
    assert (key.current_cost, key.current_date_cost, key.cost_date) == (200, 0, "2030-01-02")
    assert hold.day == "2030-01-02"
    env.settle(hold, 300)
    assert (key.current_cost, key.current_date_cost) == (500, 300)

    # A call held before midnight and settled after it counts for the day it is settled on.
    hold = env.billing.reserve(key, 100)
    day.value = "2030-01-03"
    env.settle(hold, 50)
    assert (key.current_cost, key.current_date_cost, key.cost_date) == (550, 50, "2030-01-03")
    assert account.balance == 10_000 - 550

    await env.writer.flush()  # one batch holding three days
    row = await env.db_key(key.id)
    assert (row["current_cost"], row["current_date_cost"], row["cost_date"]) == (550, 50, "2030-01-03")
    assert await env.db_balance(account.id) == 9_450


async def test_insufficient_balance(env: Env) -> None:
    account, key, _ = await env.account_with_key(1_000)
    # A reservation needs only a positive available balance, so it may hold more than the balance.
    big = env.billing.reserve(key, 1_500)
    assert account.available == -500
    with pytest.raises(InsufficientBalance) as exc:
        env.billing.reserve(key, 1)
    assert type(exc.value) is InsufficientBalance
    assert (exc.value.err_code, exc.value.http_status, exc.value.code) == (
        -10004,
        402,
        "insufficient_balance",
    )
    assert (account.held, key.held) == (1_500, 1_500)  # a refused reservation holds nothing

    env.settle(big, 1_200)
    assert (account.balance, account.held, account.available) == (-200, 0, -200)
    with pytest.raises(InsufficientBalance):
        env.billing.reserve(key, 1)

    await env.keys.topup(account.id, 200)
    assert account.available == 0
    with pytest.raises(InsufficientBalance):  # zero is not enough: available must be positive
        env.billing.reserve(key, 1)
    await env.keys.topup(account.id, 1)
    last = env.billing.reserve(key, 1)
    assert account.available == 0
    with pytest.raises(InsufficientBalance):
        env.billing.reserve(key, 1)
    env.settle(last, None)
    assert account.available == 1

    await env.writer.flush()
    assert await env.db_balance(account.id) == 1
    assert await env.store.ledger_sum(account.id) == 1


async def test_key_cost_limit(env: Env) -> None:
    account, key, _ = await env.account_with_key(1_000_000, limit_cost=500)
    free, _ = await env.keys.create_key(account.id, KeySettings(api_name="unlimited"))
    h1 = env.billing.reserve(key, 300)
    h2 = env.billing.reserve(key, 300)  # 0 spent + 300 held < 500
    with pytest.raises(KeyCostLimit) as exc:  # 0 spent + 600 held >= 500
        env.billing.reserve(key, 1)
    assert (exc.value.err_code, exc.value.http_status, exc.value.code) == (
        -10006,
        402,
        "key_cost_limit_reached",
    )
    env.billing.settle(env.billing.reserve(free, 300), PRICE, None, env.rec())  # other keys are unaffected

    env.settle(h1, 200)
    env.settle(h2, 200)
    assert (key.current_cost, key.held) == (400, 0)
    h3 = env.billing.reserve(key, 1_000)  # 400 spent < 500
    with pytest.raises(KeyCostLimit):
        env.billing.reserve(key, 1)
    env.settle(h3, 100)
    assert key.current_cost == 500
    with pytest.raises(KeyCostLimit):  # 500 spent >= 500
        env.billing.reserve(key, 1)

    await env.keys.update_key(key, parse_key_settings({"limit_cost": "0.000001"}, partial_of=key))
    assert key.limit_cost == 1_000
    env.settle(env.billing.reserve(key, 1), 1)
    await env.writer.flush()
    row = await env.db_key(key.id)
    assert (row["limit_cost"], row["current_cost"]) == (1_000, 501)
    assert await env.db_balance(account.id) == 1_000_000 - 501


async def test_key_daily_limit(env: Env, day: SimpleNamespace) -> None:
    account, key, _ = await env.account_with_key(1_000_000, limit_daily_cost=500)
    h1 = env.billing.reserve(key, 400)
    h2 = env.billing.reserve(key, 200)  # 0 spent today + 400 held < 500
    with pytest.raises(KeyDailyLimit) as exc:  # 0 + 600 held >= 500
        env.billing.reserve(key, 1)
    assert (exc.value.err_code, exc.value.http_status, exc.value.code) == (
        -10007,
        402,
        "key_daily_limit_reached",
    )
    env.settle(h1, 300)
    env.settle(h2, 200)
    with pytest.raises(KeyDailyLimit):  # 500 spent today
        env.billing.reserve(key, 1)

    day.value = "2030-01-02"
    env.settle(env.billing.reserve(key, 100), 100)
    assert (key.current_cost, key.current_date_cost, key.cost_date) == (600, 100, "2030-01-02")

    # The total limit is checked before the daily one.
    both, _ = await env.keys.create_key(
        account.id, KeySettings(api_name="both", limit_cost=300, limit_daily_cost=300)
    )
    env.settle(env.billing.reserve(both, 300), 300)
    with pytest.raises(KeyCostLimit):
        env.billing.reserve(both, 1)

    await env.writer.flush()
    row = await env.db_key(key.id)
    assert (row["current_cost"], row["current_date_cost"], row["cost_date"]) == (600, 100, "2030-01-02")


async def test_persistence_converges(env: Env, day: SimpleNamespace) -> None:
    alice, a_main, _ = await env.account_with_key(5_000)
    a_side, _ = await env.keys.create_key(alice.id, KeySettings(api_name="side"))
    bob, b_main, _ = await env.account_with_key(700, limit_cost=600)

    env.settle(env.billing.reserve(a_main, 1_000), 800)
    env.settle(env.billing.reserve(a_side, 1_000), 150)
    env.settle(env.billing.reserve(b_main, 500), 450)
    await env.writer.flush()
    day.value = "2030-01-02"
    env.settle(env.billing.reserve(a_main, 1_000), 999)
    env.settle(env.billing.reserve(a_side, 1_000), None)  # rolls side's day in memory, charges nothing
    await env.keys.topup(bob.id, 1_000)
    env.settle(env.billing.reserve(b_main, 500), 140)
    open_hold = env.billing.reserve(a_main, 100)  # still open: holds are never persisted
    await env.writer.flush()

    expected_balances = {alice.id: 5_000 - 800 - 150 - 999, bob.id: 700 - 450 + 1_000 - 140}
    assert {a.id: a.balance for a in env.keys.accounts.values()} == expected_balances
    fresh = await env.reloaded()
    assert {a.id: a.balance for a in fresh.accounts.values()} == expected_balances
    assert {a.id: a.held for a in fresh.accounts.values()} == {alice.id: 0, bob.id: 0}
    for account_id, balance in expected_balances.items():
        assert await env.store.ledger_sum(account_id) == balance

    def counters(key: KeyState) -> tuple[int, int, str]:
        return key.current_cost, key.current_date_cost, key.cost_date

    assert counters(a_main) == (1_799, 999, "2030-01-02")
    assert counters(b_main) == (590, 140, "2030-01-02")
    # A day rolled without a charge is only in memory; the database catches up on the next charge.
    assert counters(a_side) == (150, 0, "2030-01-02")
    assert counters(fresh.key_named(alice.id, "side")) == (150, 150, "2030-01-01")
    for key in (a_main, a_side, b_main):
        loaded = fresh.key_named(key.account.id, key.api_name)
        loaded.roll_day(day.value)
        assert counters(loaded) == counters(key)
        assert (loaded.limit_cost, loaded.key_hash, loaded.held) == (key.limit_cost, key.key_hash, 0)
    env.settle(open_hold, None)


async def test_concurrent_reservations_keep_the_books(env: Env) -> None:
    initial, max_hold, tasks = 10_000, 1_000, 200
    account, key, _ = await env.account_with_key(initial)
    env.writer = UsageWriter(env.store, flush_interval_s=0.01, batch_size=16)
    env.billing = Billing(env.writer, default_output_hold_tokens=1000)
    env.writer.start()
    rng = random.Random(302)
    plans = [
        (
            rng.random() * 0.05,  # start delay
            rng.randint(100, max_hold),  # hold
            rng.random() * 0.005,  # call duration
            rng.random() < 0.2,  # the call fails
            rng.random(),  # share of the hold actually spent
        )
        for _ in range(tasks)
    ]
    charged: list[int] = []
    refused = 0
    lowest = initial

    async def call(start: float, amount: int, duration: float, fails: bool, share: float) -> None:
        nonlocal refused, lowest
        await asyncio.sleep(start)
        available = account.available
        try:
            hold = env.billing.reserve(key, amount)
        except InsufficientBalance:
            assert available <= 0
            refused += 1
            return
        assert available > 0
        await asyncio.sleep(duration)
        cost = None if fails else int(amount * share)
        charged.append(env.settle(hold, cost))
        assert charged[-1] == (cost or 0) <= amount
        lowest = min(lowest, account.balance)
        assert account.balance >= -max_hold

    await asyncio.gather(*(call(*plan) for plan in plans))
    await env.writer.close()

    spent = sum(charged)
    assert refused > 0
    assert len(charged) > 20
    assert len(charged) + refused == tasks
    assert lowest >= -max_hold
    assert (account.held, key.held) == (0, 0)
    assert account.balance == initial - spent
    assert key.current_cost == spent
    assert env.writer.pending == 0
    assert await env.db_balance(account.id) == account.balance
    assert await env.store.ledger_sum(account.id) == account.balance
    async with env.store.engine.connect() as conn:
        count, total = (
            await conn.execute(
                select(func.count(), func.coalesce(func.sum(t.usage_logs.c.cost), 0)).where(
                    t.usage_logs.c.account_id == account.id
                )
            )
        ).one()
    assert (count, int(total)) == (len(charged), initial - account.balance)
    assert (await env.db_key(key.id))["current_cost"] == spent


# --- parse_key_settings -------------------------------------------------------------------------


def make_key(**overrides: Any) -> KeyState:
    values: dict[str, Any] = {
        "id": 1,
        "account": AccountState(1, "alice", 0, 0),
        "api_name": "main",
        "key_hash": "h" * 64,
        "key_hint": "sk-abcd...wxyz",
        "allow_save_logs": False,
        "allow_manage_key": True,
        "allow_custom_model": True,
        "limit_cost": 7_000_000_000,
        "current_cost": 0,
        "limit_daily_cost": 2_000_000_000,
        "current_date_cost": 0,
        "cost_date": "2030-01-01",
        "expired_on": 1_900_000_000,
        "enabled": True,
        "created_at": 0,
    }
    values.update(overrides)
    return KeyState(**values)


def test_parse_key_settings_full_body() -> None:
    assert parse_key_settings({"api_name": "  team a  "}) == KeySettings(api_name="team a")
    body = {
        "api_name": "main",
        "allow_save_logs": 0,
        "allow_manage_key": True,
        "allow_custom_model": 1,
        "limit_cost": "12.5",
        "limit_daily_cost": 0.25,
        "expired_on": 1_900_000_000,
    }
    assert parse_key_settings(body) == KeySettings(
        api_name="main",
        allow_save_logs=False,
        allow_manage_key=True,
        allow_custom_model=True,
        limit_cost=12_500_000_000,
        limit_daily_cost=250_000_000,
        expired_on=1_900_000_000,
    )
    # null means the default: no limit, never expires, the flag's default.
    nulls = {"api_name": "x", "allow_save_logs": None, "limit_cost": None, "expired_on": None}
    assert parse_key_settings(nulls) == KeySettings(api_name="x")
    assert parse_key_settings({"api_name": "x" * 200, "limit_cost": 3}).limit_cost == 3_000_000_000
    # The largest amount and time the database can hold.
    top = parse_key_settings({"api_name": "x", "limit_cost": "9223372036.854775807", "expired_on": 2**63 - 1})
    assert (top.limit_cost, top.expired_on) == (2**63 - 1, 2**63 - 1)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "api_name"),
        ({"api_name": ""}, "api_name"),
        ({"api_name": "   "}, "api_name"),
        ({"api_name": 5}, "api_name"),
        ({"api_name": None}, "api_name"),
        ({"api_name": "x" * 201}, "api_name"),
        ({"api_name": "k", "allow_save_logs": "yes"}, "allow_save_logs"),
        ({"api_name": "k", "allow_manage_key": 2}, "allow_manage_key"),
        ({"api_name": "k", "allow_custom_model": "true"}, "allow_custom_model"),
        ({"api_name": "k", "limit_cost": "abc"}, "limit_cost"),
        ({"api_name": "k", "limit_cost": -1}, "limit_cost"),
        ({"api_name": "k", "limit_cost": True}, "limit_cost"),
        ({"api_name": "k", "limit_cost": [1]}, "limit_cost"),
        ({"api_name": "k", "limit_cost": "NaN"}, "limit_cost"),
        ({"api_name": "k", "limit_cost": "0.0000000001"}, "limit_cost"),
        ({"api_name": "k", "limit_cost": "9223372036.854775808"}, "limit_cost"),
        ({"api_name": "k", "limit_daily_cost": "-0.5"}, "limit_daily_cost"),
        ({"api_name": "k", "limit_daily_cost": {"usd": 1}}, "limit_daily_cost"),
        ({"api_name": "k", "limit_daily_cost": "1e10"}, "limit_daily_cost"),
        ({"api_name": "k", "expired_on": "1900000000"}, "expired_on"),
        ({"api_name": "k", "expired_on": -1}, "expired_on"),
        ({"api_name": "k", "expired_on": 1.5}, "expired_on"),
        ({"api_name": "k", "expired_on": True}, "expired_on"),
        ({"api_name": "k", "expired_on": 2**63}, "expired_on"),
    ],
)
def test_parse_key_settings_rejects(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as exc:
        parse_key_settings(body)
    assert exc.value.param == param
    assert (exc.value.err_code, exc.value.http_status) == (-10011, 400)


def test_parse_key_settings_rejects_non_objects() -> None:
    bodies: list[Any] = [None, [], "main", 3]
    for body in bodies:
        with pytest.raises(InvalidRequest, match="JSON object"):
            parse_key_settings(body)


def test_parse_key_settings_partial_keeps_values() -> None:
    key = make_key()
    kept = KeySettings(
        api_name="main",
        allow_save_logs=False,
        allow_manage_key=True,
        allow_custom_model=True,
        limit_cost=7_000_000_000,
        limit_daily_cost=2_000_000_000,
        expired_on=1_900_000_000,
    )
    assert parse_key_settings({}, partial_of=key) == kept
    changed = parse_key_settings({"limit_cost": "1", "allow_custom_model": False}, partial_of=key)
    assert changed == KeySettings(
        api_name="main",
        allow_save_logs=False,
        allow_manage_key=True,
        allow_custom_model=False,
        limit_cost=1_000_000_000,
        limit_daily_cost=2_000_000_000,
        expired_on=1_900_000_000,
    )
    renamed = parse_key_settings({"api_name": " renamed ", "expired_on": 0}, partial_of=key)
    assert (renamed.api_name, renamed.expired_on, renamed.limit_cost) == ("renamed", 0, 7_000_000_000)
    cleared = parse_key_settings({"limit_daily_cost": None, "expired_on": None}, partial_of=key)
    assert (cleared.limit_daily_cost, cleared.expired_on, cleared.limit_cost) == (0, 0, 7_000_000_000)
    # Validation applies to partial updates too, and the key itself is left alone.
    with pytest.raises(InvalidRequest) as exc:
        parse_key_settings({"limit_cost": -1}, partial_of=key)
    assert exc.value.param == "limit_cost"
    with pytest.raises(InvalidRequest) as exc:
        parse_key_settings({"api_name": ""}, partial_of=key)
    assert exc.value.param == "api_name"
    assert (key.api_name, key.limit_cost) == ("main", 7_000_000_000)
