"""Repository: every SQL statement the gateway runs lives here."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from omnirelay.store import tables as t


def now_s() -> int:
    return int(time.time())


@dataclass(slots=True)
class UsageRow:
    """One request's log row plus the money it moved; written by the batched writer."""

    request_id: str
    account_id: int
    key_id: int
    api_name: str
    endpoint: str
    model: str
    channel: str | None
    status: str
    http_status: int
    stream: bool
    input_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    requests: int
    estimated: bool
    cost: int
    latency_ms: int
    first_byte_ms: int | None
    attempts: int
    error: str | None
    created_at: int
    cost_date: str

    def log_values(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "account_id": self.account_id,
            "key_id": self.key_id,
            "api_name": self.api_name,
            "endpoint": self.endpoint,
            "model": self.model,
            "channel": self.channel,
            "status": self.status,
            "http_status": self.http_status,
            "stream": self.stream,
            "input_tokens": self.input_tokens,
            "cached_input_tokens": self.cached_input_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "output_tokens": self.output_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "requests": self.requests,
            "estimated": self.estimated,
            "cost": self.cost,
            "latency_ms": self.latency_ms,
            "first_byte_ms": self.first_byte_ms,
            "attempts": self.attempts,
            "error": self.error,
            "created_at": self.created_at,
        }


class Store:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    # --- meta -----------------------------------------------------------------------------------

    async def get_meta(self, key: str) -> str | None:
        async with self.engine.connect() as conn:
            return (await conn.execute(select(t.meta.c.value).where(t.meta.c.key == key))).scalar()

    async def set_meta(self, key: str, value: str) -> None:
        async with self.engine.begin() as conn:
            done = await conn.execute(update(t.meta).where(t.meta.c.key == key).values(value=value))
            if done.rowcount == 0:
                await conn.execute(insert(t.meta).values(key=key, value=value))

    # --- accounts -------------------------------------------------------------------------------

    async def create_account(self, name: str, balance: int) -> dict[str, Any]:
        created = now_s()
        secret = secrets.token_hex(32)  # signs this account's task webhooks
        async with self.engine.begin() as conn:
            result = await conn.execute(
                insert(t.accounts).values(
                    name=name, balance=balance, created_at=created, webhook_secret=secret
                )
            )
            account_id = int(result.inserted_primary_key[0])  # type: ignore[index]
            if balance:
                await conn.execute(
                    insert(t.ledger).values(
                        account_id=account_id, kind="topup", amount=balance, created_at=created
                    )
                )
        return {
            "id": account_id,
            "name": name,
            "balance": balance,
            "created_at": created,
            "webhook_secret": secret,
        }

    async def topup(self, account_id: int, amount: int) -> int:
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(t.accounts)
                .where(t.accounts.c.id == account_id)
                .values(balance=t.accounts.c.balance + amount)
                .returning(t.accounts.c.balance)
            )
            row = done.first()
            if row is None:
                raise LookupError(account_id)
            await conn.execute(
                insert(t.ledger).values(
                    account_id=account_id, kind="topup", amount=amount, created_at=now_s()
                )
            )
            return int(row[0])

    async def load_accounts(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.accounts))
            return [dict(r._mapping) for r in rows]

    async def get_account(self, account_id: int) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.accounts).where(t.accounts.c.id == account_id))).first()
            return dict(row._mapping) if row else None

    async def ledger_sum(self, account_id: int) -> int:
        async with self.engine.connect() as conn:
            value = await conn.execute(
                select(func.coalesce(func.sum(t.ledger.c.amount), 0)).where(
                    t.ledger.c.account_id == account_id
                )
            )
            return int(value.scalar() or 0)

    # --- keys -----------------------------------------------------------------------------------

    async def load_keys(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.api_keys))
            return [dict(r._mapping) for r in rows]

    async def insert_key(self, values: dict[str, Any]) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(insert(t.api_keys).values(**values))
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    async def update_key(self, key_id: int, values: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(update(t.api_keys).where(t.api_keys.c.id == key_id).values(**values))

    async def delete_key(self, key_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(delete(t.api_keys).where(t.api_keys.c.id == key_id))

    # --- channels -------------------------------------------------------------------------------

    async def load_channels(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(select(t.channels).order_by(t.channels.c.name))
            return [dict(r._mapping) for r in rows]

    async def upsert_channel(
        self, name: str, config: dict[str, Any], source: str, file_hash: str = ""
    ) -> None:
        values = {
            "config": orjson.dumps(config).decode(),
            "source": source,
            "file_hash": file_hash,
            "updated_at": now_s(),
        }
        async with self.engine.begin() as conn:
            done = await conn.execute(update(t.channels).where(t.channels.c.name == name).values(**values))
            if done.rowcount == 0:
                await conn.execute(insert(t.channels).values(name=name, **values))

    async def delete_channel(self, name: str) -> bool:
        async with self.engine.begin() as conn:
            done = await conn.execute(delete(t.channels).where(t.channels.c.name == name))
            return bool(done.rowcount)

    # --- usage ----------------------------------------------------------------------------------

    async def write_usage_batch(self, rows: Sequence[UsageRow]) -> None:
        """One transaction: log rows, ledger charges, and balance / key counter increments."""
        if not rows:
            return
        async with self.engine.begin() as conn:
            # A batch whose commit was not confirmed (connection lost during COMMIT) comes back on the
            # retry: rows already stored are skipped, so nothing is charged twice and the queue moves on.
            ids = [r.request_id for r in rows]
            found = await conn.execute(
                select(t.usage_logs.c.request_id).where(t.usage_logs.c.request_id.in_(ids))
            )
            stored = set(found.scalars().all())
            fresh = [r for r in rows if r.request_id not in stored]
            if not fresh:
                return
            await conn.execute(insert(t.usage_logs), [r.log_values() for r in fresh])
            await self._apply_charges(conn, fresh)

    @staticmethod
    async def _apply_charges(conn: AsyncConnection, rows: Sequence[UsageRow]) -> None:
        account_deltas: dict[int, int] = {}
        key_deltas: dict[tuple[int, str], int] = {}
        charges = []
        for row in rows:
            if not row.cost:
                continue
            account_deltas[row.account_id] = account_deltas.get(row.account_id, 0) + row.cost
            slot = (row.key_id, row.cost_date)
            key_deltas[slot] = key_deltas.get(slot, 0) + row.cost
            charges.append(
                {
                    "account_id": row.account_id,
                    "key_id": row.key_id,
                    "request_id": row.request_id,
                    "kind": "charge",
                    "amount": -row.cost,
                    "created_at": row.created_at,
                }
            )
        if charges:
            await conn.execute(insert(t.ledger), charges)
        for account_id, delta in sorted(account_deltas.items()):
            await conn.execute(
                update(t.accounts)
                .where(t.accounts.c.id == account_id)
                .values(balance=t.accounts.c.balance - delta)
            )
        k = t.api_keys.c
        for (key_id, day), delta in sorted(key_deltas.items()):
            await conn.execute(
                update(t.api_keys)
                .where(k.id == key_id)
                .values(
                    current_cost=k.current_cost + delta,
                    current_date_cost=case((k.cost_date == day, k.current_date_cost + delta), else_=delta),
                    cost_date=day,
                )
            )

    async def get_usage(self, request_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(select(t.usage_logs).where(t.usage_logs.c.request_id == request_id))
            ).first()
            return dict(row._mapping) if row else None

    async def list_usage(
        self,
        account_id: int,
        *,
        offset: int,
        limit: int,
        start_time: int | None = None,
        end_time: int | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        u = t.usage_logs.c
        cond = [u.account_id == account_id]
        if start_time is not None:
            cond.append(u.created_at >= start_time)
        if end_time is not None:
            cond.append(u.created_at <= end_time)
        async with self.engine.connect() as conn:
            total = (await conn.execute(select(func.count()).select_from(t.usage_logs).where(*cond))).scalar()
            rows = await conn.execute(
                select(t.usage_logs)
                .where(*cond)
                .order_by(u.created_at.desc(), u.request_id.desc())
                .offset(offset)
                .limit(limit)
            )
            return [dict(r._mapping) for r in rows], int(total or 0)
