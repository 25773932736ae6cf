"""The 302 dashboard API (spec §6), on an account's own key with ``allow_manage_key``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from omnirelay.api.common import JSONResponse, client_key, gateway, int_query, read_json
from omnirelay.api.views import key_view, record_view
from omnirelay.core.accounts import KeyState
from omnirelay.core.keys import parse_key_settings
from omnirelay.errors import InvalidRequest, NotFound, PermissionDenied
from omnirelay.gateway import Gateway
from omnirelay.money import usd_number, usd_str

_BODY_LIMIT = 1024 * 1024
# Which catalog categories a priced API path covers, for /dashboard/prices?path=
_PATH_CATEGORIES = {
    "/chat/completions": "chat",
    "/v1/chat/completions": "chat",
    "/embeddings": "embedding",
    "/v1/embeddings": "embedding",
}


def _ok(data: Any, **extra: Any) -> JSONResponse:
    return JSONResponse({"code": 0, "msg": "success", "data": data, **extra})


def _manager(request: Request) -> tuple[Gateway, KeyState]:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    if not key.allow_manage_key:
        raise PermissionDenied("This API key may not use the dashboard API (allow_manage_key is off).")
    return gw, key


async def balance(request: Request) -> JSONResponse:
    _, key = _manager(request)
    return _ok({"balance": usd_str(key.account.balance)})


async def webhook_secret(request: Request) -> JSONResponse:
    """The secret that signs this account's task webhooks (X-Omnirelay-Signature)."""
    _, key = _manager(request)
    return _ok({"webhook_secret": key.account.webhook_secret})


async def prices(request: Request) -> JSONResponse:
    gw, _ = _manager(request)
    path = request.query_params.get("path")
    lang = request.query_params.get("lang", "en")
    category = None
    if path:
        category = _PATH_CATEGORIES.get(path.rstrip("/"))
        if category is None:
            return _ok([])
    data = []
    for model_id in gw.router.models():
        info = gw.prices.get(model_id)
        if info is None or not info.billable or (category and info.category != category):
            continue
        price = info.price
        pricing: dict[str, float] = {}
        if price is not None:
            pricing = {"input": usd_number(price.input), "output": usd_number(price.output)}
            if price.cached_input is not None:
                pricing["cached_input"] = usd_number(price.cached_input)
            if price.per_request:
                pricing["per_request"] = usd_number(price.per_request)
        data.append(
            {
                "name": info.id,
                "tag": (info.tag_cn or info.tag) if lang == "zh" else (info.tag or info.tag_cn),
                "pricing": pricing,
                "pricing_prefix": "",
                "pricing_suffix": "1M tokens",
                "description": info.description,
                "free": info.free,
            }
        )
    return _ok(data)


async def list_keys(request: Request) -> JSONResponse:
    gw, key = _manager(request)
    return _ok([key_view(k) for k in gw.keys.keys_of(key.account.id)])


async def get_key(request: Request) -> JSONResponse:
    gw, key = _manager(request)
    return _ok(key_view(gw.keys.key_named(key.account.id, request.path_params["api_name"])))


async def create_key(request: Request) -> JSONResponse:
    gw, key = _manager(request)
    settings = parse_key_settings(await read_json(request, _BODY_LIMIT))
    created, clear = await gw.keys.create_key(key.account.id, settings)
    return _ok(key_view(created, clear))


async def update_key(request: Request) -> JSONResponse:
    """PUT /dashboard/api_key/{api_name}; also PUT /dashboard/api_key with ``api_name`` in the body.

    A rename goes in ``new_api_name``; fields left out keep their values.
    """
    gw, key = _manager(request)
    body = await read_json(request, _BODY_LIMIT)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object of key settings.")
    name = request.path_params.get("api_name") or body.get("api_name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name the key to update in the path or in 'api_name'", param="api_name")
    target = gw.keys.key_named(key.account.id, name)
    changes = dict(body)
    changes["api_name"] = body.get("new_api_name", target.api_name)
    changes.pop("new_api_name", None)
    await gw.keys.update_key(target, parse_key_settings(changes, partial_of=target))
    return _ok({})


async def delete_key(request: Request) -> JSONResponse:
    gw, key = _manager(request)
    target = gw.keys.key_named(key.account.id, request.path_params["api_name"])
    await gw.keys.delete_key(target)
    return _ok({})


async def record(request: Request) -> JSONResponse:
    gw, key = _manager(request)
    request_id = request.path_params["request_id"]
    # The row may still sit in the batch writer; flushing first makes a just-finished call visible.
    await gw.writer.flush()
    row = await gw.store.get_usage(request_id)
    if row is None or row["account_id"] != key.account.id:
        raise NotFound(f"no request record '{request_id}' for this account")
    return _ok(record_view(row))


async def api_record(request: Request) -> JSONResponse:
    gw, key = _manager(request)
    page = int_query(request, "page", 1, low=1, high=1_000_000)
    limit = int_query(request, "limit", 20, low=1, high=50)
    start = int_query(request, "start_time", -1, low=0, high=2**40)
    end = int_query(request, "end_time", -1, low=0, high=2**40)
    await gw.writer.flush()
    offset = (page - 1) * limit
    rows, total = await gw.store.list_usage(
        key.account.id,
        offset=offset,
        limit=limit,
        start_time=start if start >= 0 else None,
        end_time=end if end >= 0 else None,
    )
    total_page = max(1, -(-total // limit))
    pagination = {
        "total": total,
        "total_page": total_page,
        "cur_page": page,
        "pre_page": page - 1 if page > 1 else None,
        "next_page": page + 1 if page < total_page else None,
        "offset": offset,
        "limit": limit,
    }
    items = [record_view(r) for r in rows]
    return _ok({"items": items, "pagination": pagination}, items=items, pagination=pagination)
