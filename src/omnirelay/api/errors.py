"""Exception handlers: every error leaves in the dialect of the route family it hit."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.common import JSONResponse
from omnirelay.dialects.errors import error_302, error_anthropic, error_google, error_openai
from omnirelay.errors import (
    GatewayError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
)

log = logging.getLogger("omnirelay.errors")


def render(request: Request, exc: GatewayError) -> Response:
    return render_for_path(request.url.path, exc)


def render_for_path(path: str, exc: GatewayError) -> Response:
    if path.startswith("/v1/messages"):
        body = error_anthropic(exc)
    elif path.startswith("/v1beta") or (path.startswith("/v1/models/") and ":" in path):
        body = error_google(exc)
    elif path.startswith("/v1/") or path == "/v1":
        body = error_openai(exc)
    else:
        body = error_302(exc)
        if path.startswith("/dashboard"):
            # 302 dashboard clients check a top-level non-zero code as well as the HTTP status.
            body = {"code": exc.err_code, "msg": exc.message, **body}
    headers = {"retry-after": "1"} if isinstance(exc, RateLimited) else None
    return JSONResponse(body, status_code=exc.http_status, headers=headers)


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return render(request, exc)


async def on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    mapped: GatewayError
    if exc.status_code == 404:
        mapped = NotFound(f"There is no route for {request.method} {request.url.path}.")
    elif exc.status_code == 405:
        mapped = MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}.")
    elif exc.status_code == 413:
        mapped = PayloadTooLarge("The request body is too large.")
    else:
        mapped = InvalidRequest(str(exc.detail), status=exc.status_code)
    response = render(request, mapped)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


INTERNAL_ERROR_MESSAGE = "The gateway hit an internal error; the request was not billed."
