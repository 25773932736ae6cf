"""Cancelling a task on the client's request: take the task's lease, stop it upstream, refund it.

Written against the engine's own parts (its store, lease owner and ``_finish``) so that it can become
``TaskEngine.cancel`` unchanged: ``async def cancel(self, task_id, account_id): return await
cancel_task(self, task_id, account_id)``.

The rules:

- a task of another account is not found;
- a finished task stays as it is (``finished``);
- a task not yet sent upstream (``pending``) is finished at once as cancelled, fully refunded;
- a task being sent (``submitting``) cannot be cancelled: whether the upstream took it is not known yet;
- a task running upstream (``processing``) is cancelled upstream first, through the family handler's
  ``cancel`` (a handler without one cannot cancel); only when the upstream agrees is it finished as
  cancelled and refunded. When it refuses (the job already finished, say) the task is polled again at
  once, so its real outcome shows soon.

While the worker holds the task (a poll in flight), the cancel waits for the lease, up to ``wait_s``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from sqlalchemy import or_, update

from omnirelay.core.tasks.engine import TaskEngine
from omnirelay.core.tasks.model import Finished, Task
from omnirelay.errors import GatewayError
from omnirelay.providers.base import ProviderError
from omnirelay.store import tables as t
from omnirelay.store.tasks import ACTIVE, TERMINAL

CANCELLED_ERROR = {
    "error": "cancelled",
    "message": "the task was cancelled by the client",
    "error_type": "cancelled",
}


@runtime_checkable
class Cancellable(Protocol):
    async def cancel(self, task: Task) -> str | None:
        """Cancel the job upstream: None when it is cancelled, else why it cannot be."""
        ...


@dataclass(slots=True)
class CancelOutcome:
    status: Literal["cancelled", "not_found", "finished", "refused", "busy"]
    task: Task | None = None
    reason: str = ""


async def cancel_task(
    engine: TaskEngine, task_id: str, account_id: int, *, wait_s: float = 10.0
) -> CancelOutcome:
    store = engine._store
    row = await store.get(task_id)
    if row is None or row["account_id"] != account_id:
        return CancelOutcome("not_found")
    deadline = time.monotonic() + wait_s
    delay = 0.01
    while True:
        if row["settled"] or row["status"] in TERMINAL:
            return CancelOutcome("finished", Task.from_row(row))
        claimed = await _claim(engine, task_id)
        if claimed is not None:
            break
        if time.monotonic() >= deadline:
            return CancelOutcome("busy", Task.from_row(row), "the task is being worked on; try again")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)
        row = await store.get(task_id)
        if row is None:  # pragma: no cover - tasks are never deleted
            return CancelOutcome("not_found")
    task = Task.from_row(claimed)
    if task.status == "processing":
        handler = engine.handlers.get(task.family)
        reason: str | None = "this kind of task cannot be cancelled once it is sent upstream"
        if isinstance(handler, Cancellable):
            try:
                reason = await handler.cancel(task)
            except (ProviderError, GatewayError) as exc:
                reason = f"the upstream could not be asked to cancel ({exc})"
        if reason is not None:
            await store.release(task.id, engine.owner, time.time())
            engine.wake()
            return CancelOutcome("refused", task, reason)
    elif task.status != "pending":  # submitting: the upstream may or may not have the job
        await store.release(task.id, engine.owner, time.time() + engine._cfg.poll_interval_s)
        return CancelOutcome("refused", task, "the task is being submitted upstream; try again shortly")
    await engine._finish(task, Finished(None, None, failed=True, error=dict(CANCELLED_ERROR)))
    async with store.engine.begin() as conn:
        # _finish writes "failed"; a cancelled task says so in its status too (the state machine's
        # "cancelled"). The refund and the usage row were written with the final state above.
        await conn.execute(
            update(t.tasks)
            .where(t.tasks.c.id == task.id, t.tasks.c.status == "failed")
            .values(status="cancelled")
        )
    final = await store.get(task.id)
    return CancelOutcome("cancelled", Task.from_row(final) if final is not None else task)


async def _claim(engine: TaskEngine, task_id: str) -> dict[str, Any] | None:
    """Take the lease of an active, unsettled task nobody holds; the row, or None."""
    c = t.tasks.c
    now = time.time()
    stmt = (
        update(t.tasks)
        .where(
            c.id == task_id,
            c.status.in_(ACTIVE),
            c.settled.is_(False),
            or_(c.lease_until.is_(None), c.lease_until < now),
        )
        .values(lease_owner=engine.owner, lease_until=now + engine._cfg.lease_s)
        .returning(*t.tasks.c)
    )
    async with engine._store.engine.begin() as conn:
        row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row is not None else None
