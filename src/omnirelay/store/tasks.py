"""SQL for durable tasks: create, claim with a lease, update under the lease, finish with the money.

Claiming is one atomic UPDATE over a due selection; on PostgreSQL the selection takes row locks with
SKIP LOCKED, so several gateway processes never claim the same task. A claim is a lease
(``lease_owner``, ``lease_until``): every later write names the owner, so a worker whose lease ran out
(it stalled, or died) cannot overwrite a task another worker has taken over.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from omnirelay.store import tables as t
from omnirelay.store.repo import Store, UsageRow

ACTIVE = ("pending", "submitting", "processing")
TERMINAL = ("succeeded", "failed", "cancelled")


class TaskStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"

    async def insert(self, values: dict[str, Any]) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(insert(t.tasks).values(**values))

    async def get(self, task_id: str) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(t.tasks).where(t.tasks.c.id == task_id))).first()
            return dict(row._mapping) if row else None

    async def claim_due(self, owner: str, now: float, lease_s: float, limit: int) -> list[dict[str, Any]]:
        """Active tasks whose next poll is due and whose lease (if any) ran out."""
        c = t.tasks.c
        return await self._claim(
            [c.status.in_(ACTIVE), c.next_poll_at <= now], c.next_poll_at, owner, now, lease_s, limit
        )

    async def _claim(
        self, conditions: list[Any], order: Any, owner: str, now: float, lease_s: float, limit: int
    ) -> list[dict[str, Any]]:
        """Lease up to ``limit`` unleased rows matching ``conditions`` to ``owner``, in one UPDATE."""
        c = t.tasks.c
        due = (
            select(c.id)
            .where(*conditions, or_(c.lease_until.is_(None), c.lease_until < now))
            .order_by(order)
            .limit(limit)
        )
        if self._pg:
            due = due.with_for_update(skip_locked=True)
        stmt = (
            update(t.tasks)
            .where(c.id.in_(due.scalar_subquery()))
            .values(lease_owner=owner, lease_until=now + lease_s)
            .returning(*t.tasks.c)
        )
        async with self.engine.begin() as conn:
            rows = (await conn.execute(stmt)).fetchall()
        return [dict(r._mapping) for r in rows]

    async def update(self, task_id: str, owner: str, values: dict[str, Any]) -> bool:
        """Write under the lease; False when the lease was lost (the task is someone else's now)."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == task_id, t.tasks.c.lease_owner == owner)
                .values(**values)
            )
            return bool(done.rowcount)

    async def finish(self, task_id: str, owner: str, values: dict[str, Any], usage: UsageRow | None) -> bool:
        """Final state and the money in one transaction, exactly once (``settled`` guards it)."""
        c = t.tasks.c
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(t.tasks)
                .where(c.id == task_id, c.lease_owner == owner, c.settled.is_(False))
                .values(**values, settled=True, lease_owner=None, lease_until=None)
            )
            if not done.rowcount:
                return False
            if usage is not None:
                await conn.execute(insert(t.usage_logs), [usage.log_values()])
                await Store._apply_charges(conn, [usage])
            return True

    async def release(self, task_id: str, owner: str, next_poll_at: float) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.tasks)
                .where(t.tasks.c.id == task_id, t.tasks.c.lease_owner == owner)
                .values(lease_owner=None, lease_until=None, next_poll_at=next_poll_at)
            )

    async def unsettled(self) -> list[dict[str, Any]]:
        """Tasks still holding money (for re-taking their holds after a restart)."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                select(t.tasks.c.id, t.tasks.c.key_id, t.tasks.c.hold).where(t.tasks.c.settled.is_(False))
            )
            return [dict(r._mapping) for r in rows]

    async def claim_webhooks(
        self, owner: str, now: float, lease_s: float, limit: int
    ) -> list[dict[str, Any]]:
        """Finished tasks whose webhook delivery is due."""
        c = t.tasks.c
        return await self._claim(
            [c.webhook_status == "pending", c.webhook_next_at <= now],
            c.webhook_next_at,
            owner,
            now,
            lease_s,
            limit,
        )
