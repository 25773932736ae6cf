"""Many parallel requests against a small balance: the money invariants hold end to end."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from omnirelay.money import NANOS_PER_USD
from omnirelay.store import tables as t
from omnirelay.store.db import create_engine
from tests.conftest import GatewayFactory, sim_channel
from tests.upstreams.openai import OpenAISim

REQUESTS = 60
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "spend"}], "max_tokens": 20}


async def _ledger(database_url: str, account_id: int) -> tuple[int, int, int, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            ledger = (
                await conn.execute(
                    select(func.sum(t.ledger.c.amount)).where(t.ledger.c.account_id == account_id)
                )
            ).scalar()
            spent = (
                await conn.execute(
                    select(func.sum(t.usage_logs.c.cost)).where(t.usage_logs.c.account_id == account_id)
                )
            ).scalar()
            rows = (
                await conn.execute(select(func.count()).where(t.usage_logs.c.account_id == account_id))
            ).scalar()
            balance = (
                await conn.execute(select(t.accounts.c.balance).where(t.accounts.c.id == account_id))
            ).scalar()
        return int(ledger or 0), int(spent or 0), int(rows or 0), int(balance or 0)
    finally:
        await engine.dispose()


def test_parallel_spend_never_overdraws_by_more_than_one_hold(
    gateway_factory: GatewayFactory, sim: OpenAISim, database_url: str
) -> None:
    server = gateway_factory([sim_channel(sim)], database_url=database_url)
    initial = Decimal("0.0002")
    account_id, key = server.account_key(str(initial))
    sim.config.latency_ms = 50

    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=REQUESTS)) as client:
            calls = [
                client.post(
                    f"{server.base_url}/v1/chat/completions",
                    json=BODY,
                    headers={"Authorization": f"Bearer {key}"},
                )
                for _ in range(REQUESTS)
            ]
            return [r.status_code for r in await asyncio.gather(*calls)]

    statuses = asyncio.run(run())
    ok, refused = statuses.count(200), statuses.count(402)
    assert ok + refused == REQUESTS, statuses
    assert ok >= 1 and refused >= 1, "the balance must run out part way"

    account = server.admin("GET", f"/admin/accounts/{account_id}").json()
    final = Decimal(account["balance"])
    assert account["held"] == "0"
    # One request's hold: estimated input 9 tokens (3 framing + 4 per message + 2 for "spend") at
    # 0.15 plus max_tokens 20 at 0.60, per 1M tokens.
    max_hold = (9 * Decimal("0.15") + 20 * Decimal("0.60")) / 1_000_000
    assert final >= -max_hold, f"overdrawn by more than one hold: {final}"

    server.stop()  # flushes the usage writer
    ledger, spent, rows, db_balance = asyncio.run(_ledger(database_url, account_id))
    initial_nanos = int(initial * NANOS_PER_USD)
    assert rows == ok, "one usage row per served request (refusals never reach the upstream)"
    assert db_balance == int(final * NANOS_PER_USD)
    assert ledger == db_balance, "the ledger sums to the balance"
    assert spent == initial_nanos - db_balance, "usage costs sum to the balance change"
