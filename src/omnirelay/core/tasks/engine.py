"""The task engine: create, submit once, poll with backoff, settle once, call back.

Runs inside every gateway process that has ``tasks.worker`` on. Work is claimed from the database
with a lease (store/tasks.py), so one process (SQLite) or several (PostgreSQL) share it without a
cluster protocol: whoever holds a task's lease works on it; a lease that runs out (a dead process)
lets another worker pick the task up and carry on from its stored state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import uuid
from typing import Any

import orjson

from omnirelay.core.accounts import KeyState
from omnirelay.core.billing import Billing, CallRecord, Hold
from omnirelay.core.keys import KeyRegistry
from omnirelay.core.pricing import PriceBook
from omnirelay.core.tasks import webhooks
from omnirelay.core.tasks.model import Finished, Pending, Submitted, Task, TaskHandler
from omnirelay.errors import GatewayError
from omnirelay.providers.base import ProviderError
from omnirelay.settings import Settings
from omnirelay.store.tasks import TaskStore

log = logging.getLogger("omnirelay.tasks")


def _dumps(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


class TaskEngine:
    def __init__(
        self,
        *,
        settings: Settings,
        store: TaskStore,
        billing: Billing,
        keys: KeyRegistry,
        prices: PriceBook,
        http: Any,
    ) -> None:
        self._cfg = settings.tasks
        self._policy = settings.image_fetch
        self._store = store
        self._billing = billing
        self._keys = keys
        self._prices = prices
        self._http = http
        self.handlers: dict[str, TaskHandler] = {}
        self._holds: dict[str, Hold] = {}
        self.owner = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._loops: list[asyncio.Task[None]] = []
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(self._cfg.concurrency)
        self.pace: Any = None  # task -> float: the vendor's polling pace (set by the gateway)
        self._wake = asyncio.Event()

    def register(self, handler: TaskHandler) -> None:
        self.handlers[handler.family] = handler

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        # Holds of unfinished tasks live in the database; take them again in memory.
        for row in await self._store.unsettled():
            key = self._keys.key_by_id(row["key_id"])
            if key is not None and row["id"] not in self._holds:
                self._holds[row["id"]] = self._billing.restore(key, int(row["hold"]))
        if self._cfg.worker:
            self._loops = [
                asyncio.create_task(self._poll_loop(), name="omnirelay-task-poller"),
                asyncio.create_task(self._webhook_loop(), name="omnirelay-webhooks"),
            ]

    async def stop(self) -> None:
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops = []
        if self._running:
            # In-flight work ends at its next await; leases run out and another start resumes it.
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    # --- creating -------------------------------------------------------------------------------

    async def create(
        self,
        *,
        key: KeyState,
        family: str,
        kind: str,
        model: str,
        hold: int,
        request: dict[str, Any],
        request_id: str,
        webhook_url: str | None = None,
        task_id: str | None = None,
        deadline_s: float | None = None,
    ) -> Task:
        """Reserve the money and write the row; the worker takes it from there."""
        if webhook_url:
            await webhooks.check_url(webhook_url, self._policy, param="webhook")
        held = self._billing.reserve(key, hold)
        now = time.time()
        values = {
            "id": task_id or str(uuid.uuid4()),
            "account_id": key.account.id,
            "key_id": key.id,
            "family": family,
            "kind": kind,
            "model": model,
            "channel": None,
            "status": "pending",
            "request": _dumps(request),
            "upstream_task_id": None,
            "upstream_state": None,
            "result": None,
            "error": None,
            "progress": None,
            "polls": 0,
            "hold": hold,
            "cost": 0,
            "settled": False,
            "request_id": request_id,
            "webhook_url": webhook_url or None,
            "webhook_status": None,
            "webhook_attempts": 0,
            "webhook_next_at": None,
            "webhook_last_error": None,
            "next_poll_at": now,
            "deadline_at": now + (deadline_s or self._cfg.deadline_s),
            "lease_owner": None,
            "lease_until": None,
            "created_at": now,
            "updated_at": now,
            "completed_at": None,
        }
        try:
            await self._store.insert(values)
        except BaseException:
            self._billing.release(held)
            raise
        self._holds[str(values["id"])] = held
        self.wake()
        return Task.from_row(values)

    async def get(self, task_id: str, account_id: int) -> Task | None:
        """A task of this account; another account's task is simply not found."""
        row = await self._store.get(task_id)
        if row is None or row["account_id"] != account_id:
            return None
        return Task.from_row(row)

    # --- the worker -----------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("task poller round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._cfg.tick_s)
            self._wake.clear()

    async def run_once(self) -> int:
        free = self._cfg.concurrency - len(self._running)
        if free <= 0:
            return 0
        rows = await self._store.claim_due(self.owner, time.time(), self._cfg.lease_s, free)
        for row in rows:
            job = asyncio.create_task(self._guarded(Task.from_row(row)))
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        return len(rows)

    async def _guarded(self, task: Task) -> None:
        async with self._slots:
            try:
                await self._advance(task)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("task %s: unexpected error; it will be tried again", task.id)
                await self._store.release(task.id, self.owner, time.time() + self._cfg.poll_interval_s)

    async def _advance(self, task: Task) -> None:
        handler = self.handlers.get(task.family)
        if handler is None:
            await self._finish(
                task, Finished(None, None, failed=True, error=_error("no handler for this task"))
            )
            return
        now = time.time()
        if task.status == "pending":
            await self._submit(task, handler)
        elif task.status == "submitting":
            found = await handler.reconcile(task)
            if found is None:
                reason = "the submission was interrupted and is not sent again, to avoid paying twice"
                await self._finish(task, Finished(None, None, failed=True, error=_error(reason)))
                return
            await self._store.update(task.id, self.owner, self._submitted_values(found))
            await self._store.release(task.id, self.owner, now + self._cfg.poll_interval_s)
        elif task.status == "processing":
            if now >= task.deadline_at:
                reason = "the task passed its deadline without a verdict from the upstream"
                await self._finish(task, Finished(None, None, failed=True, error=_error(reason, "deadline")))
                return
            await self._check(task, handler)

    async def _submit(self, task: Task, handler: TaskHandler) -> None:
        now = time.time()
        if not await self._store.update(task.id, self.owner, {"status": "submitting", "updated_at": now}):
            return
        task.status = "submitting"
        try:
            outcome = await handler.submit(task)
        except GatewayError as exc:
            await self._finish(task, Finished(None, None, failed=True, error=_gateway_error(exc)))
            return
        if isinstance(outcome, Finished):
            await self._finish(task, outcome)
            return
        await self._store.update(task.id, self.owner, self._submitted_values(outcome))
        await self._store.release(task.id, self.owner, time.time() + self._cfg.poll_interval_s)

    def _submitted_values(self, sent: Submitted) -> dict[str, Any]:
        return {
            "status": "processing",
            "upstream_task_id": sent.upstream_task_id,
            "channel": sent.channel,
            "upstream_state": _dumps(sent.state),
            "updated_at": time.time(),
        }

    async def _check(self, task: Task, handler: TaskHandler) -> None:
        polls = task.polls + 1
        # Per-vendor pace: the engine's interval scaled by how often the channel's adapter likes to be
        # asked (an adapter's ``poll_interval_s``, 1.0 meaning "the engine's own pace").
        pace = self.pace(task) if self.pace is not None else 1.0
        base = self._cfg.poll_interval_s * pace
        delay = min(base * (1.5 ** min(polls, 12)), self._cfg.max_poll_interval_s * pace)
        try:
            outcome = await handler.check(task)
        except (ProviderError, GatewayError) as exc:
            # A failed poll is not a verdict: the upstream may still finish (and bill). Try later.
            log.info("task %s: poll failed (%s); trying again", task.id, exc)
            await self._store.update(task.id, self.owner, {"polls": polls, "updated_at": time.time()})
            await self._store.release(task.id, self.owner, time.time() + delay)
            return
        if isinstance(outcome, Pending):
            values: dict[str, Any] = {"polls": polls, "progress": outcome.progress, "updated_at": time.time()}
            if outcome.state is not None:
                values["upstream_state"] = _dumps(outcome.state)
            await self._store.update(task.id, self.owner, values)
            await self._store.release(task.id, self.owner, time.time() + delay)
            return
        task.polls = polls
        await self._finish(task, outcome)

    async def _finish(self, task: Task, outcome: Finished) -> None:
        now = time.time()
        hold = self._holds.get(task.id)
        key = self._keys.key_by_id(task.key_id)
        if hold is None and key is not None:
            hold = self._billing.restore(key, task.hold)
        info = self._prices.get(task.model)
        rec = CallRecord(
            task.request_id,
            f"task:{task.family}",
            task.model,
            channel=outcome.channel or task.channel,
            status="error" if outcome.failed else "ok",
            http_status=500 if outcome.failed else 200,
            started=task.created_at,
            attempts=task.polls,
            error=(outcome.error or {}).get("message") if outcome.failed else None,
        )
        usage = None if outcome.failed else outcome.usage
        row = self._billing.usage_row(hold, info.price if info else None, usage, rec) if hold else None
        values = {
            "status": "failed" if outcome.failed else "succeeded",
            "result": _dumps(outcome.result),
            "error": _dumps(outcome.error),
            "cost": row.cost if row else 0,
            "polls": task.polls,
            "progress": "100%" if not outcome.failed else task.progress,
            "updated_at": now,
            "completed_at": now,
            "webhook_status": "pending" if task.webhook_url else None,
            "webhook_next_at": now if task.webhook_url else None,
        }
        if outcome.upstream_task_id is not None:
            values["upstream_task_id"] = outcome.upstream_task_id
        if outcome.channel is not None:
            values["channel"] = outcome.channel
        done = await self._store.finish(task.id, self.owner, values, row)
        if hold is not None and hold.open:
            if done and row is not None:
                self._billing.apply(hold, row)
            else:
                self._billing.release(hold)
        self._holds.pop(task.id, None)
        if done and task.webhook_url:
            self.wake()

    # --- webhooks -------------------------------------------------------------------------------

    async def _webhook_loop(self) -> None:
        while True:
            try:
                await self.deliver_webhooks()
            except Exception:
                log.exception("webhook round failed")
            await asyncio.sleep(self._cfg.tick_s)

    async def deliver_webhooks(self) -> int:
        rows = await self._store.claim_webhooks(self.owner, time.time(), self._cfg.lease_s, 16)
        for row in rows:
            task = Task.from_row(row)
            handler = self.handlers.get(task.family)
            account = self._keys.accounts.get(task.account_id)
            if handler is None or account is None or not task.webhook_url:
                await self._store.update(
                    task.id, self.owner, {"webhook_status": "failed", "lease_owner": None}
                )
                continue
            reason = await webhooks.deliver(
                self._http(),
                task.webhook_url,
                handler.webhook_payload(task),
                secret=account.webhook_secret,
                task_id=task.id,
                event=f"task.{task.status}",
                policy=self._policy,
                timeout_s=self._cfg.webhook_timeout_s,
            )
            attempts = task.webhook_attempts + 1
            values: dict[str, Any] = {"webhook_attempts": attempts, "lease_owner": None, "lease_until": None}
            if reason is None:
                values["webhook_status"] = "delivered"
                values["webhook_last_error"] = None
            elif attempts >= self._cfg.webhook_max_attempts:
                values["webhook_status"] = "failed"
                values["webhook_last_error"] = reason
            else:
                values["webhook_last_error"] = reason
                values["webhook_next_at"] = time.time() + self._cfg.webhook_backoff_s * (2 ** (attempts - 1))
            await self._store.update(task.id, self.owner, values)
        return len(rows)


def _error(message: str, kind: str = "failed") -> dict[str, Any]:
    return {"error": kind, "message": message, "error_type": kind}


def _gateway_error(exc: GatewayError) -> dict[str, Any]:
    return {
        "error": exc.code,
        "message": exc.message,
        "error_type": exc.type,
        "err_code": exc.err_code,
    }
