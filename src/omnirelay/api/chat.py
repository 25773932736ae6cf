"""POST /v1/chat/completions: OpenAI Chat Completions, to any upstream (api/chat_engine.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api import async_chat
from omnirelay.api.chat_engine import ChatCall, run_chat
from omnirelay.api.common import client_key, gateway, read_body
from omnirelay.api.streaming import EventStreamResponse
from omnirelay.dialects.openai_chat import (
    client_wants_usage,
    estimate_input_tokens,
    max_output_tokens,
    parse_chat_request,
    upstream_body,
    wants_stream,
)
from omnirelay.errors import InvalidRequest

ENDPOINT = "/v1/chat/completions"


def _passthrough(raw: bytes, body: dict[str, object], upstream_model: str) -> bytes:
    return upstream_body(raw, body, upstream_model)


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    raw = await read_body(request, gw.settings.max_body_bytes)
    body = parse_chat_request(raw)
    if request.query_params:  # only the async mode reads the query string (keeps the hot path lean)
        if request.query_params.get("async", "").lower() in ("true", "1"):
            return await async_chat.submit(request, key, body)
        if request.query_params.get("callback"):
            raise InvalidRequest("'callback' needs async=true", param="callback")
    call = ChatCall(
        dialect="openai_chat",
        raw=raw,
        body=body,
        model=body["model"],
        stream=wants_stream(body),
        endpoint=ENDPOINT,
        passthrough=_passthrough,
        include_usage=client_wants_usage(body),
        # Counted from the OpenAI body directly: a same-format call never builds canonical types.
        input_estimate=estimate_input_tokens(body),
        max_output=max_output_tokens(body) or 0,
    )
    return await run_chat(request, gw, key, call)
