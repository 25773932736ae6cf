"""The Gemini API: POST /v1beta/models/{model}:generateContent | :streamGenerateContent | :countTokens,
and GET /v1beta/models[/{model}]; to any upstream."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.chat_engine import ChatCall, run_chat
from omnirelay.api.common import JSONResponse, client_key, gateway, read_body
from omnirelay.api.streaming import EventStreamResponse
from omnirelay.core.accounts import KeyState
from omnirelay.core.tokens import count_request
from omnirelay.dialects import registry
from omnirelay.errors import InvalidRequest, NotFound
from omnirelay.gateway import Gateway

_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


def _key(request: Request, gw: Gateway) -> KeyState:
    # Gemini clients send the key as x-goog-api-key, or in the ?key= query parameter.
    return gw.keys.authenticate(client_key(request.headers) or request.query_params.get("key"))


def _passthrough(raw: bytes, body: dict[str, Any], upstream_model: str) -> bytes:
    from omnirelay.dialects.gemini import passthrough_body

    return passthrough_body(raw, body, upstream_model)


async def model_action(request: Request) -> Response | EventStreamResponse:
    gw = gateway(request)
    key = _key(request, gw)
    target = request.path_params["target"]
    model, _, method = target.partition(":")
    if method not in _METHODS:
        raise NotFound(
            f"There is no method `{method or '(none)'}` on models; use one of {', '.join(_METHODS)}."
        )
    raw = await read_body(request, gw.settings.max_body_bytes)
    import orjson

    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"Invalid JSON payload received ({exc.args[0]}).") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    call = ChatCall(
        dialect="gemini",
        raw=raw,
        body=body,
        model=model,
        stream=method == "streamGenerateContent",
        endpoint=f"/v1beta/models:{method}",
        passthrough=_passthrough,
    )
    if method == "countTokens":
        contents = body.get("generateContentRequest", body)
        parsed = registry.inbound("gemini").parse(contents, model=model)
        return JSONResponse({"totalTokens": count_request(parsed)})
    call.canonical()  # validates the whole body before any money moves
    return await run_chat(request, gw, key, call)


def _listing(gw: Gateway) -> list[dict[str, Any]]:
    rows = []
    for model_id in gw.router.models():
        info = gw.prices.get(model_id)
        if info is None or not info.billable or not info.is_llm:
            continue
        rows.append(
            {
                "id": model_id,
                "description": info.description,
                "content_length": info.content_length,
                "max_completion_tokens": info.max_completion_tokens,
            }
        )
    return rows


async def list_models(request: Request) -> JSONResponse:
    gw = gateway(request)
    _key(request, gw)
    from omnirelay.dialects.gemini import models_list

    return JSONResponse(models_list(_listing(gw)))


async def get_model(request: Request) -> JSONResponse:
    gw = gateway(request)
    _key(request, gw)
    from omnirelay.dialects.gemini import models_list

    wanted = request.path_params["target"].removeprefix("models/")
    for model in models_list(_listing(gw))["models"]:
        if model["name"] == f"models/{wanted}":
            return JSONResponse(model)
    raise NotFound(f"models/{wanted} is not found for API version v1beta.")
