"""POST /v1/messages (Anthropic Messages) and /v1/messages/count_tokens, to any upstream."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.chat_engine import ChatCall, run_chat
from omnirelay.api.common import JSONResponse, client_key, decode_json, gateway, read_body, read_json
from omnirelay.api.streaming import EventStreamResponse
from omnirelay.core.tokens import count_request
from omnirelay.dialects import registry
from omnirelay.errors import InvalidRequest

_FORWARDED = ("anthropic-version", "anthropic-beta")


def _checked_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: Field required", param="model")
    return body


def _passthrough(raw: bytes, body: dict[str, Any], upstream_model: str) -> bytes:
    from omnirelay.dialects.anthropic import passthrough_body

    return passthrough_body(raw, body, upstream_model)


async def messages(request: Request) -> Response | EventStreamResponse:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    raw_body = await read_body(request, gw.settings.max_body_bytes)
    body = _checked_body(decode_json(raw_body))
    call = ChatCall(
        dialect="anthropic",
        raw=raw_body,
        body=body,
        model=body["model"],
        stream=body.get("stream") is True,
        endpoint="/v1/messages",
        passthrough=_passthrough,
        forward_headers={h: request.headers[h] for h in _FORWARDED if h in request.headers},
    )
    call.canonical()  # validates the whole body before any money moves
    return await run_chat(request, gw, key, call)


async def count_tokens(request: Request) -> JSONResponse:
    """A local count (the estimator of core/tokens.py): free, and never sent upstream."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    body = _checked_body(await read_json(request, gw.settings.max_body_bytes))
    parsed = registry.inbound("anthropic").parse(
        {**body, "max_tokens": body.get("max_tokens") or 1}, model=body["model"]
    )
    return JSONResponse({"input_tokens": count_request(parsed)})
