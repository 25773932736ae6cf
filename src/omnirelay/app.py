"""create_app(settings): the ASGI application with its routes, error handlers and lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Route

from omnirelay.api.asgi import OmnirelayApp
from omnirelay.api.async_chat import AsyncChatHandler
from omnirelay.api.errors import on_gateway_error, on_http_exception
from omnirelay.api.routes import OPS
from omnirelay.errors import GatewayError
from omnirelay.gateway import Gateway
from omnirelay.settings import Settings


def _routes() -> list[Route]:
    # One Route per (path, method) keeps endpoints plain functions; Starlette answers 405 itself.
    return [Route(op.path, op.endpoint, methods=[op.method], include_in_schema=False) for op in OPS]


def create_app(settings: Settings) -> OmnirelayApp:
    gateway = Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = Starlette(
        routes=_routes(),
        exception_handlers={GatewayError: on_gateway_error, HTTPException: on_http_exception},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    # Async chat runs through the chat engine (api layer), so its handler is registered here.
    gateway.tasks.register(AsyncChatHandler(gateway))
    return OmnirelayApp(app, {(op.method, op.path): op.endpoint for op in OPS if op.hot})
