"""An ASGI streaming response that notices a client leaving while the upstream is still silent.

The body is pumped in its own task while another waits for ``http.disconnect``; when the client goes
away the pump is cancelled at once (which closes the upstream connection) and the generator's
``finally`` runs before the response returns, so billing never waits on garbage collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable

from starlette.types import Receive, Scope, Send

log = logging.getLogger("omnirelay.stream")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse:
    def __init__(
        self,
        body: AsyncGenerator[bytes, None],
        *,
        on_close: Callable[[], None] | None = None,
        status_code: int = 200,
    ) -> None:
        self.body = body
        self.status_code = status_code
        # Runs after the body is closed, even when it never started (client gone before the first
        # chunk), so what the body's own ``finally`` would have done is never skipped.
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._run(receive, send)
        finally:
            await self.body.aclose()
            if self.on_close is not None:
                self.on_close()

    async def _run(self, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": SSE_HEADERS})
        pump = asyncio.create_task(self._pump(send))
        watch = asyncio.create_task(self._watch(receive))
        try:
            await asyncio.wait((pump, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            try:
                await pump
            except (asyncio.CancelledError, OSError):
                pass
            except Exception:
                # Headers are already out: nothing can be rendered, so log and end the response.
                log.exception("stream body failed")

    async def _pump(self, send: Send) -> None:
        async for chunk in self.body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
