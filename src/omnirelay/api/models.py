"""GET /v1/models (with 302's extra fields) and the model status monitor (/v1/status, /status)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from omnirelay.api.common import JSONResponse, client_key, gateway
from omnirelay.core.pricing import ModelInfo
from omnirelay.errors import InvalidRequest
from omnirelay.money import usd_str

_CREATED = 1_700_000_000


def _price_fields(info: ModelInfo) -> dict[str, str]:
    if info.price is None:
        return {"input_token": "0", "output_token": "0", "per_request": "0"}
    price = info.price
    fields = {
        "input_token": usd_str(price.input),
        "output_token": usd_str(price.output),
    }
    if price.cached_input is not None:
        fields["cached_input_token"] = usd_str(price.cached_input)
    if price.per_request:
        fields["per_request"] = usd_str(price.per_request)
    return fields


def model_entry(info: ModelInfo, first_byte: float | None) -> dict[str, Any]:
    return {
        "id": info.id,
        "object": "model",
        "created": _CREATED,
        "owned_by": info.vendor or "omnirelay",
        "category": info.tag_cn or info.tag,
        "category_en": info.tag,
        "description": info.description,
        "description_en": info.description,
        "content_length": info.content_length,
        "max_completion_tokens": info.max_completion_tokens,
        "supported_tools": bool(info.supported_tools),
        "is_moderated": False,
        "first_byte_req_time": f"{first_byte:.2f}" if first_byte is not None else "",
        "price": _price_fields(info),
    }


async def list_models(request: Request) -> JSONResponse:
    """The models the caller's key can reach: served by an enabled channel and priced (or free)."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    llm = request.query_params.get("llm")
    if llm not in (None, "", "0", "1"):
        raise InvalidRequest("query parameter 'llm' must be 1 or 0", param="llm")
    data = []
    for model_id in gw.router.models():
        info = gw.prices.get(model_id)
        if info is None or not info.billable:
            continue
        if llm == "1" and not info.is_llm:
            continue
        if llm == "0" and info.is_llm:
            continue
        data.append(model_entry(info, gw.latency.first_byte(model_id)))
    return JSONResponse({"object": "list", "data": data})


async def model_status(request: Request) -> JSONResponse:
    """Recent median first-byte latency per model, from real traffic through this gateway."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    model = request.query_params.get("model")
    models = [model] if model else sorted(set(gw.router.models()) | set(gw.latency.models()))
    data = []
    for model_id in models:
        first = gw.latency.first_byte(model_id)
        data.append(
            {
                "id": model_id,
                "object": "model",
                "first_byte_req_time": f"{first:.2f}" if first is not None else None,
                "available": gw.router.has_model(model_id),
            }
        )
    return JSONResponse({"data": data})
