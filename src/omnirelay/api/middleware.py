"""Pure-ASGI middleware: a ``request-id`` on every response, and a last-resort 500 in the route's dialect."""

from __future__ import annotations

import logging
import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from omnirelay.api.errors import INTERNAL_ERROR_MESSAGE, render_for_path
from omnirelay.errors import GatewayError

log = logging.getLogger("omnirelay.errors")


def new_request_id() -> str:
    return os.urandom(12).hex()


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        header = (b"request-id", rid.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error on %s %s (request-id %s)", scope["method"], scope["path"], rid)
            if started:
                raise
            response = render_for_path(scope["path"], GatewayError(INTERNAL_ERROR_MESSAGE))
            await response(scope, receive, send_with_id)
