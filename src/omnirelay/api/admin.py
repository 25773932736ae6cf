"""The operator API under /admin (Bearer operator key): accounts, top-ups, client keys, channels."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.common import JSONResponse, client_key, gateway, read_json
from omnirelay.api.views import account_view, key_view
from omnirelay.core.channels import parse_channel
from omnirelay.core.keys import parse_key_settings
from omnirelay.errors import InvalidRequest, MissingKey, NotFound, Unauthenticated
from omnirelay.gateway import Gateway
from omnirelay.money import usd_to_nanos

_ADMIN_BODY_LIMIT = 1024 * 1024
# One billion USD per operation keeps every balance far inside a signed 64-bit count of nano-USD.
_MAX_AMOUNT = usd_to_nanos(1_000_000_000)


def _operator(request: Request) -> Gateway:
    gw = gateway(request)
    clear = client_key(request.headers)
    if not clear:
        raise MissingKey("Missing operator key")
    if not gw.is_admin(clear):
        raise Unauthenticated("Invalid operator key")
    return gw


def _account_id(request: Request) -> int:
    raw = request.path_params["account_id"]
    if not raw.isdigit():
        raise NotFound(f"account {raw} does not exist")
    return int(raw)


def _amount(body: object, field: str, *, allow_zero: bool) -> int:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    raw = body.get(field, 0 if allow_zero else None)
    if raw is None:
        raise InvalidRequest(f"'{field}' is required (USD, as a number or a decimal string)", param=field)
    try:
        nanos = usd_to_nanos(raw)
    except (ValueError, TypeError):
        raise InvalidRequest(f"'{field}' must be a USD amount such as \"12.50\"", param=field) from None
    if nanos > _MAX_AMOUNT:
        raise InvalidRequest(f"'{field}' must be at most 1000000000 USD", param=field)
    if nanos < 0 or (nanos == 0 and not allow_zero):
        raise InvalidRequest(f"'{field}' must be {'zero or ' if allow_zero else ''}positive", param=field)
    return nanos


async def create_account(request: Request) -> JSONResponse:
    gw = _operator(request)
    body = await read_json(request, _ADMIN_BODY_LIMIT)
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
        raise InvalidRequest("'name' is required: a string of at most 200 characters", param="name")
    account = await gw.keys.create_account(name.strip(), _amount(body, "balance", allow_zero=True))
    return JSONResponse(account_view(account, 0), status_code=201)


async def list_accounts(request: Request) -> JSONResponse:
    gw = _operator(request)
    accounts = sorted(gw.keys.accounts.values(), key=lambda a: a.id)
    return JSONResponse({"data": [account_view(a, len(gw.keys.keys_of(a.id))) for a in accounts]})


async def get_account(request: Request) -> JSONResponse:
    gw = _operator(request)
    account = gw.keys.account(_account_id(request))
    return JSONResponse(account_view(account, len(gw.keys.keys_of(account.id))))


async def topup(request: Request) -> JSONResponse:
    gw = _operator(request)
    account_id = _account_id(request)
    gw.keys.account(account_id)
    body = await read_json(request, _ADMIN_BODY_LIMIT)
    account = await gw.keys.topup(account_id, _amount(body, "amount", allow_zero=False))
    return JSONResponse(account_view(account, len(gw.keys.keys_of(account.id))))


async def create_key(request: Request) -> JSONResponse:
    gw = _operator(request)
    account_id = _account_id(request)
    gw.keys.account(account_id)
    settings = parse_key_settings(await read_json(request, _ADMIN_BODY_LIMIT))
    key, clear = await gw.keys.create_key(account_id, settings)
    return JSONResponse(key_view(key, clear), status_code=201)


async def list_keys(request: Request) -> JSONResponse:
    gw = _operator(request)
    account_id = _account_id(request)
    gw.keys.account(account_id)
    return JSONResponse({"data": [key_view(k) for k in gw.keys.keys_of(account_id)]})


async def list_channels(request: Request) -> JSONResponse:
    gw = _operator(request)
    return JSONResponse({"data": [_channel_view(gw, c.name) for c in gw.channels.list()]})


def _channel_view(gw: Gateway, name: str) -> dict[str, object]:
    view = gw.channels.get(name).public()
    runtime = gw.router.channel(name)
    if runtime is not None:
        view["breaker"] = runtime.breaker.state.value
    return view


async def create_channel(request: Request) -> JSONResponse:
    gw = _operator(request)
    cfg = parse_channel(await read_json(request, _ADMIN_BODY_LIMIT))
    await gw.channels.create(cfg)
    return JSONResponse(_channel_view(gw, cfg.name), status_code=201)


async def get_channel(request: Request) -> JSONResponse:
    gw = _operator(request)
    return JSONResponse(_channel_view(gw, request.path_params["name"]))


async def put_channel(request: Request) -> JSONResponse:
    """Replace a channel; a body without api_key/api_keys keeps the channel's current upstream keys."""
    gw = _operator(request)
    name = request.path_params["name"]
    gw.channels.get(name)
    cfg = parse_channel(await read_json(request, _ADMIN_BODY_LIMIT), name=name)
    await gw.channels.replace(cfg, keep_keys=True)
    return JSONResponse(_channel_view(gw, name))


async def delete_channel(request: Request) -> Response:
    gw = _operator(request)
    await gw.channels.delete(request.path_params["name"])
    return Response(status_code=204)
