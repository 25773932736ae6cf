"""Small request/response helpers shared by the route modules."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from omnirelay.errors import InvalidRequest, PayloadTooLarge
from omnirelay.gateway import Gateway

_KEY_HEADERS = ("x-api-key", "x-goog-api-key", "mj-api-secret")


def gateway(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gateway
    return gw


def request_id(request: Request) -> str:
    rid: str = request.scope["state"]["request_id"]
    return rid


def client_key(headers: Headers) -> str | None:
    """The client key: ``Authorization: Bearer``, ``x-api-key``, ``x-goog-api-key`` or ``mj-api-secret``."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return auth.strip() or None
    for name in _KEY_HEADERS:
        found = headers.get(name)
        if found:
            return found.strip()
    return None


async def read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, limit: int, *, allow_empty: bool = False) -> Any:
    return decode_json(await read_body(request, limit), allow_empty=allow_empty)


def decode_json(raw: bytes, *, allow_empty: bool = False) -> Any:
    """A request body as JSON, or a 400 that says what is wrong with it."""
    if not raw.strip():
        if allow_empty:
            return {}
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request ({exc.args[0]}).") from exc


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def int_query(request: Request, name: str, default: int, *, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter '{name}' must be an integer", param=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"query parameter '{name}' must be between {low} and {high}", param=name)
    return value
