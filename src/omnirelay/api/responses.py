"""POST /v1/responses: the OpenAI Responses API, translated to any chat upstream."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.chat_engine import ChatCall, run_chat
from omnirelay.api.common import client_key, decode_json, gateway, read_body
from omnirelay.api.streaming import EventStreamResponse
from omnirelay.errors import InvalidRequest


async def create_response(request: Request) -> Response | EventStreamResponse:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    raw = await read_body(request, gw.settings.max_body_bytes)
    body: Any = decode_json(raw)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    call = ChatCall(
        dialect="openai_responses",
        raw=raw,
        body=body,
        model=model,
        stream=body.get("stream") is True,
        endpoint="/v1/responses",
        passthrough=None,  # no upstream speaks Responses: always translated
    )
    call.canonical()  # validates the whole body before any money moves
    return await run_chat(request, gw, key, call)
