"""The batched usage writer: the hot path appends, a background task writes a batch per transaction.

Loss window: rows not yet flushed when the process is killed with SIGKILL are lost (at most
``flush_interval_s`` of traffic, or ``batch_size`` rows). A normal shutdown flushes everything. A
failed write keeps its rows and is tried again at the next tick, so a database outage delays rows
instead of dropping them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from omnirelay.store.repo import Store, UsageRow

log = logging.getLogger("omnirelay.writer")


class UsageWriter:
    def __init__(self, store: Store, *, flush_interval_s: float, batch_size: int) -> None:
        self._store = store
        self._interval = flush_interval_s
        self._batch_size = batch_size
        self._rows: list[UsageRow] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self.written = 0
        self.failures = 0

    def submit(self, row: UsageRow) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._batch_size:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._rows)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="omnirelay-usage-writer")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            while self._rows:
                batch = self._rows[: self._batch_size]
                try:
                    await self._store.write_usage_batch(batch)
                except Exception:
                    self.failures += 1
                    log.exception("usage batch of %d rows not written; will retry", len(batch))
                    return
                del self._rows[: len(batch)]
                self.written += len(batch)

    async def close(self) -> None:
        if self._task is not None:
            # Wait for a batch in flight: cancelled mid-commit it could be committed yet kept, and
            # written again below.
            async with self._lock:
                self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._rows:
            # One more try after a pause: a shutdown should not drop money rows lightly.
            await asyncio.sleep(0.5)
            await self.flush()
        if self._rows:
            log.error("%d usage rows could not be written at shutdown", len(self._rows))
