"""Midjourney routes in the midjourney-proxy format, under the pool prefixes /mj, /mj-relax, /mj-turbo.

Every submit writes a durable task (core/tasks/midjourney.py); the engine's worker sends it upstream
once. The route waits for that first step (a few hundred milliseconds against a healthy upstream) so
the answer carries the upstream's verdict, as midjourney-proxy's does: ``code`` 1 (or 21, 22) with our
task id in ``result``, or the refusal (24 banned prompt, 4 validation, 23 queue full, 9 failure), the
task then already failed and refunded. If the verdict takes longer than ``SUBMIT_WAIT_S`` the answer
is code 22 with the task id: the job is queued and the fetch shows what became of it.

Business errors are answered HTTP 200 with ``{"code", "description", "result", "properties"}`` (the
midjourney-proxy envelope; ``properties.err_code`` carries the 302 error code); only authentication
failures keep HTTP 401 and the 302 error body. A fetch of an unknown task is HTTP 404 with code 3.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.common import JSONResponse, client_key, gateway, read_json, request_id
from omnirelay.core.accounts import KeyState
from omnirelay.core.fetch import decode_data_url
from omnirelay.core.images import ImageInput
from omnirelay.core.tasks import webhooks
from omnirelay.core.tasks.cancel import cancel_task
from omnirelay.core.tasks.midjourney import (
    FAMILY,
    MODES,
    PREFIXES,
    SUBMIT_DESCRIPTIONS,
    SUBMIT_PROPERTIES,
    billing_model,
    code_for_error,
    mj_status,
    public_properties,
    task_object,
)
from omnirelay.core.tasks.model import Task
from omnirelay.core.usage import Usage
from omnirelay.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, Unauthenticated
from omnirelay.gateway import Gateway

Endpoint = Callable[[Request], Awaitable[Response]]

SUBMIT_WAIT_S = 30.0  # longest wait for the upstream's verdict on a submit
MAX_REFERENCE_IMAGES = 10
BLEND_IMAGES = (2, 5)
BOT_TYPES = ("MID_JOURNEY", "NIJI_JOURNEY")
DIMENSIONS = ("PORTRAIT", "SQUARE", "LANDSCAPE")
_THREAD_DECODE_CHARS = 256 * 1024


def mj_reply(
    code: int,
    description: str,
    *,
    result: str | None = None,
    properties: dict[str, Any] | None = None,
    status: int = 200,
) -> JSONResponse:
    body = {"code": code, "description": description, "result": result, "properties": properties or {}}
    return JSONResponse(body, status_code=status)


def _envelope(endpoint: Endpoint) -> Endpoint:
    """Gateway errors as midjourney-proxy business errors (HTTP 200); a bad key stays a 401."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Unauthenticated:
            raise
        except GatewayError as exc:
            return mj_reply(code_for_error(exc), exc.message, properties={"err_code": exc.err_code})

    return wrapped


# --- request parsing -----------------------------------------------------------------------------


def _pool(request: Request) -> str:
    prefix = request.url.path.strip("/").split("/", 1)[0]
    return PREFIXES.get(prefix, "midjourney")


async def _begin(request: Request) -> tuple[Gateway, KeyState, dict[str, Any]]:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    body = await read_json(request, gw.settings.max_body_bytes)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return gw, key, body


def _text(body: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise InvalidRequest(f"'{name}' is required", param=name)
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"'{name}' must be a string", param=name)
    return value


def _choice(body: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
    value = _text(body, name) or default
    if value not in choices:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(choices)}", param=name)
    return value


async def _image(gw: Gateway, value: Any, param: str) -> ImageInput:
    """A data:image/...;base64 URL, decoded and checked (UnprocessableEntity says what is wrong)."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"'{param}' must hold data:image/...;base64,... strings", param=param)
    policy = gw.settings.image_fetch
    if len(value) > _THREAD_DECODE_CHARS:
        return await asyncio.to_thread(decode_data_url, value, policy, param=param)
    return decode_data_url(value, policy, param=param)


async def _images(gw: Gateway, body: dict[str, Any], name: str, *, low: int, high: int) -> list[ImageInput]:
    values = body.get(name)
    if values is None:
        values = []
    if not isinstance(values, list):
        raise InvalidRequest(f"'{name}' must be an array of data:image base64 strings", param=name)
    if not low <= len(values) <= high:
        count = f"{low} to {high}" if low else f"at most {high}"
        raise InvalidRequest(f"'{name}' must hold {count} images, not {len(values)}", param=name)
    return [await _image(gw, value, name) for value in values]


async def _notify_hook(gw: Gateway, body: dict[str, Any]) -> str | None:
    url = _text(body, "notifyHook")
    if url:
        await webhooks.check_url(url, gw.settings.image_fetch, param="notifyHook")
    return url


async def _parent(gw: Gateway, key: KeyState, task_id: str) -> Task:
    parent = await gw.tasks.get(task_id, key.account.id)
    if parent is None or parent.family != FAMILY:
        raise NotFound(f"The task {task_id} does not exist.", param="taskId")
    return parent


def _public_base(request: Request, gw: Gateway) -> str:
    configured = gw.settings.storage.public_base_url or gw.settings.public_base_url
    if configured:
        return configured.rstrip("/")
    host = request.headers.get("host") or f"{gw.settings.host}:{gw.settings.port}"
    return f"{request.url.scheme}://{host}"


# --- creating the task ---------------------------------------------------------------------------


async def _create(
    request: Request,
    gw: Gateway,
    key: KeyState,
    kind: str,
    fields: dict[str, Any],
    *,
    images: list[ImageInput] | None = None,
    mask: ImageInput | None = None,
    parent: Task | None = None,
    webhook: str | None = None,
) -> Response:
    pool = _pool(request)
    if parent is None and not gw.router.has_model(pool):
        raise InvalidRequest(
            f"The Midjourney pool `{pool}` ({request.url.path.split('/')[1]}) is not served here."
        )
    model = billing_model(pool, kind)
    info = gw.prices.get(model)
    if info is None or not info.billable:
        raise PermissionDenied(f"`{model}` has no price on this gateway, so it cannot be used.")
    hold = info.price.cost(Usage(requests=1)) if info.price is not None else 0
    files = gw.files
    image_keys = [await files.put(image.data, image.media_type) for image in images or []]
    mask_key = await files.put(mask.data, mask.media_type) if mask is not None else None
    task = await gw.tasks.create(
        key=key,
        family=FAMILY,
        kind=kind,
        model=model,
        hold=hold,
        request={
            "kind": kind,
            "pool": pool,
            "fields": {k: v for k, v in fields.items() if v is not None},
            "images": image_keys,
            "mask": mask_key,
            "parent": parent.id if parent is not None else None,
            "public_base": _public_base(request, gw),
        },
        request_id=request_id(request),
        webhook_url=webhook,
    )
    return _submit_answer(await _await_submit(gw, task))


async def _await_submit(gw: Gateway, task: Task) -> Task:
    """The task once the worker has sent it upstream (or refused it), or as it is after the wait."""
    deadline = time.monotonic() + min(SUBMIT_WAIT_S, gw.settings.routing.total_timeout_s)
    delay = 0.005
    current = task
    while current.status in ("pending", "submitting") and time.monotonic() < deadline:
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)
        found = await gw.tasks.get(task.id, task.account_id)
        if found is None:  # pragma: no cover - tasks are never deleted
            break
        current = found
    return current


def _submit_answer(task: Task) -> Response:
    if task.status in ("pending", "submitting"):
        return mj_reply(22, SUBMIT_DESCRIPTIONS[22], result=task.id)
    if task.status in ("failed", "cancelled") and task.upstream_task_id is None:
        # Refused at submit: the task is already failed and its hold released (nothing charged).
        error = task.error or {}
        code = error.get("mj_code")
        return mj_reply(
            code if isinstance(code, int) else 9,
            str(error.get("mj_description") or error.get("message") or "Submit failed"),
            properties={
                **public_properties(error.get("mj_properties"), SUBMIT_PROPERTIES),
                "err_code": error.get("err_code"),
            },
        )
    submit = task.upstream_state.get("submit")
    submit = submit if isinstance(submit, dict) else {}
    code = submit.get("code")
    code = code if code in SUBMIT_DESCRIPTIONS else 1
    description = SUBMIT_DESCRIPTIONS[code]
    if code == 21 and task.kind != "action":  # 21 opens a modal only after a button
        description = "Task already exists"
    return mj_reply(
        code,
        description,
        result=task.id,
        properties=public_properties(submit.get("properties"), SUBMIT_PROPERTIES),
    )


# --- submit endpoints ----------------------------------------------------------------------------


@_envelope
async def imagine(request: Request) -> Response:
    """POST {prefix}/submit/imagine {prompt, botType?, base64Array?, notifyHook?, state?}."""
    gw, key, body = await _begin(request)
    prompt = _text(body, "prompt", required=True)
    bot = _choice(body, "botType", BOT_TYPES, "MID_JOURNEY")
    images = await _images(gw, body, "base64Array", low=0, high=MAX_REFERENCE_IMAGES)
    if _text(body, "base64"):  # midjourney-proxy's older single reference image
        images.append(await _image(gw, body["base64"], "base64"))
    webhook = await _notify_hook(gw, body)
    fields = {"prompt": prompt, "botType": bot, "state": _text(body, "state")}
    return await _create(request, gw, key, "imagine", fields, images=images, webhook=webhook)


@_envelope
async def blend(request: Request) -> Response:
    """POST {prefix}/submit/blend {base64Array (2-5), dimensions?, botType?, notifyHook?, state?}."""
    gw, key, body = await _begin(request)
    low, high = BLEND_IMAGES
    if not body.get("base64Array"):
        raise InvalidRequest("'base64Array' is required: 2 to 5 images to blend", param="base64Array")
    images = await _images(gw, body, "base64Array", low=low, high=high)
    fields = {
        "dimensions": _choice(body, "dimensions", DIMENSIONS, "SQUARE"),
        "botType": _choice(body, "botType", BOT_TYPES, "MID_JOURNEY"),
        "state": _text(body, "state"),
    }
    webhook = await _notify_hook(gw, body)
    return await _create(request, gw, key, "blend", fields, images=images, webhook=webhook)


@_envelope
async def describe(request: Request) -> Response:
    """POST {prefix}/submit/describe {base64, botType?, notifyHook?, state?}."""
    gw, key, body = await _begin(request)
    image = await _image(gw, _text(body, "base64", required=True), "base64")
    fields = {"botType": _choice(body, "botType", BOT_TYPES, "MID_JOURNEY"), "state": _text(body, "state")}
    webhook = await _notify_hook(gw, body)
    return await _create(request, gw, key, "describe", fields, images=[image], webhook=webhook)


@_envelope
async def action(request: Request) -> Response:
    """POST {prefix}/submit/action {taskId (ours), customId (one of its buttons), notifyHook?, state?}."""
    gw, key, body = await _begin(request)
    task_id = _text(body, "taskId", required=True)
    custom_id = _text(body, "customId", required=True)
    assert task_id is not None
    parent = await _parent(gw, key, task_id)
    if parent.status != "succeeded":
        raise InvalidRequest(
            f"The task {task_id} is {mj_status(parent)}: only a successful task's buttons can be used.",
            param="taskId",
        )
    view = task_object(parent)
    buttons = {b.get("customId") for b in view["buttons"] if isinstance(b, dict)}
    if buttons and custom_id not in buttons:
        raise InvalidRequest(f"'customId' is not one of the buttons of task {task_id}", param="customId")
    fields = {
        "taskId": task_id,
        "customId": custom_id,
        "botType": view["botType"],
        "state": _text(body, "state"),
    }
    webhook = await _notify_hook(gw, body)
    return await _create(request, gw, key, "action", fields, parent=parent, webhook=webhook)


@_envelope
async def modal(request: Request) -> Response:
    """POST {prefix}/submit/modal {taskId (ours, in MODAL), prompt?, maskBase64?, notifyHook?, state?}."""
    gw, key, body = await _begin(request)
    task_id = _text(body, "taskId", required=True)
    assert task_id is not None
    parent = await _parent(gw, key, task_id)
    status = mj_status(parent)
    if status != "MODAL":
        raise InvalidRequest(
            f"The task {task_id} is {status}, not waiting for a modal confirmation.", param="taskId"
        )
    mask_value = _text(body, "maskBase64")
    mask = await _image(gw, mask_value, "maskBase64") if mask_value else None
    fields = {
        "taskId": task_id,
        "prompt": _text(body, "prompt"),
        "botType": task_object(parent)["botType"],
        "state": _text(body, "state"),
    }
    webhook = await _notify_hook(gw, body)
    return await _create(request, gw, key, "modal", fields, mask=mask, parent=parent, webhook=webhook)


# --- tasks ---------------------------------------------------------------------------------------


async def fetch(request: Request) -> Response:
    """GET {prefix}/task/{task_id}/fetch: the midjourney-proxy task object (any pool's prefix)."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    task = await gw.tasks.get(request.path_params["task_id"], key.account.id)
    if task is None or task.family != FAMILY:
        return mj_reply(3, "The task does not exist.", status=404)
    return JSONResponse(task_object(task))


@_envelope
async def cancel(request: Request) -> Response:
    """POST {prefix}/task/{task_id}/cancel: stop a task not yet finished; it is refunded."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    task_id = request.path_params["task_id"]
    task = await gw.tasks.get(task_id, key.account.id)
    if task is None or task.family != FAMILY:
        return mj_reply(3, "The task does not exist.")
    outcome = await cancel_task(gw.tasks, task_id, key.account.id)
    if outcome.status == "cancelled":
        return mj_reply(1, "Cancel success", result=task_id)
    if outcome.status == "not_found":  # pragma: no cover - checked above
        return mj_reply(3, "The task does not exist.")
    if outcome.status == "finished":
        status = mj_status(outcome.task) if outcome.task is not None else "finished"
        return mj_reply(4, f"The task has already finished ({status}).", result=task_id)
    if outcome.status == "busy":
        return mj_reply(9, f"The task could not be cancelled now: {outcome.reason}", result=task_id)
    return mj_reply(4, f"The task cannot be cancelled: {outcome.reason}", result=task_id)


def _ops() -> list[tuple[str, str, Endpoint, str]]:
    ops: list[tuple[str, str, Endpoint, str]] = []
    for prefix, pool in PREFIXES.items():
        speed = MODES[pool].lower()
        ops += [
            ("POST", f"/{prefix}/submit/imagine", imagine, f"Midjourney imagine ({speed})"),
            ("POST", f"/{prefix}/submit/action", action, f"Midjourney button action ({speed})"),
            ("POST", f"/{prefix}/submit/blend", blend, f"Midjourney blend ({speed})"),
            ("POST", f"/{prefix}/submit/describe", describe, f"Midjourney describe ({speed})"),
            ("POST", f"/{prefix}/submit/modal", modal, f"Midjourney modal confirmation ({speed})"),
            ("GET", f"/{prefix}/task/{{task_id}}/fetch", fetch, "A Midjourney task"),
            ("POST", f"/{prefix}/task/{{task_id}}/cancel", cancel, "Cancel a Midjourney task"),
        ]
    return ops


# (method, path, endpoint, summary) for api/routes.py: Op(method, path, endpoint, "Midjourney", summary,
# "client") for each row.
OPS: list[tuple[str, str, Endpoint, str]] = _ops()
