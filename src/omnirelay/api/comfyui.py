"""302.AI-ComfyUI routes: ``POST /302/comfyui/<slug>/create-task[-upload-mask]`` and the status check.

One create route per row of catalog/comfyui.yaml and one ``check-task-status`` route per slug
(docs/comfyui.md). Create reads multipart/form-data, checks every field against the row (required
fields, allowed values, images decoded, videos by size and container magic), stores the files in the
gateway's file store and writes a durable task (family ``comfyui``, kind = the slug, model
``comfyui-<workflow>``); the answer is ``{"code": 0, "msg": "success", "data": {"taskId"}}`` at once.
``?webhook=`` asks for the engine's signed callback when the task ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from omnirelay.api.common import JSONResponse, client_key, gateway, request_id
from omnirelay.api.images import Form, _public_base, _read_form
from omnirelay.core.fetch import image_from_upload
from omnirelay.core.pricing import ModelInfo
from omnirelay.core.tasks.comfyui import (
    FAMILY,
    VIDEO_MEDIA_TYPES,
    FormField,
    Workflow,
    load_workflows,
    status_view,
    video_container,
)
from omnirelay.core.usage import Usage
from omnirelay.errors import ModelNotFound, NotFound, PayloadTooLarge, PermissionDenied, UnprocessableEntity
from omnirelay.gateway import Gateway

Endpoint = Callable[[Request], Awaitable[JSONResponse]]

VIDEO_MAX_BYTES = 100 * 1024 * 1024  # one input video; the request body may be this much larger
_THREAD_BYTES = 256 * 1024  # images larger than this are decoded off the event loop


def _served(gw: Gateway, workflow: Workflow) -> ModelInfo:
    if not gw.router.has_model(workflow.model):
        raise ModelNotFound(
            f"The ComfyUI workflow `{workflow.id}` is not served on this gateway "
            f"(no channel lists the model `{workflow.model}`)."
        )
    info = gw.prices.get(workflow.model)
    if info is None or not info.billable:
        raise PermissionDenied(
            f"The ComfyUI workflow `{workflow.id}` has no price on this gateway, so it cannot be used."
        )
    return info


def _text(form: Form, spec: FormField) -> str | None:
    value = form.text(spec.name, required=spec.required)
    if value is None:
        return spec.default
    if len(value) > spec.max_length:
        raise UnprocessableEntity(
            f"'{spec.name}' is longer than {spec.max_length} characters", param=spec.name
        )
    if spec.values is not None and value not in spec.values:
        allowed = " or ".join(f'"{v}"' for v in spec.values)
        raise UnprocessableEntity(f"'{spec.name}' must be {allowed}", param=spec.name)
    if spec.pattern is not None and re.fullmatch(spec.pattern, value) is None:
        raise UnprocessableEntity(
            f"'{spec.name}' is not valid: {spec.hint or 'it does not match ' + spec.pattern}", param=spec.name
        )
    return value


def check_video(data: bytes, content_type: str | None, *, param: str, limit: int | None = None) -> str:
    """The media type of an uploaded video: size capped, container known by its magic bytes."""
    limit = VIDEO_MAX_BYTES if limit is None else limit
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type and not (media_type.startswith("video/") or media_type == "application/octet-stream"):
            raise UnprocessableEntity(
                f"'{param}': the uploaded file has content type {media_type}, not a video", param=param
            )
    if len(data) > limit:
        raise PayloadTooLarge(f"'{param}' is larger than the {limit // (1024 * 1024)} MiB limit for videos")
    container = video_container(data)
    if container is None:
        raise UnprocessableEntity(f"'{param}' is not an MP4, MOV or WebM video", param=param)
    return VIDEO_MEDIA_TYPES[container]


async def _file(gw: Gateway, form: Form, spec: FormField) -> tuple[bytes, str] | None:
    """The checked bytes and media type of a file field; None when an optional file is absent."""
    uploads = form.files.get(spec.name, [])
    if not uploads:
        if form.fields.get(spec.name) not in (None, ""):
            raise UnprocessableEntity(
                f"'{spec.name}' must be a file (a binary part of multipart/form-data)", param=spec.name
            )
        if spec.required:
            raise UnprocessableEntity(f"'{spec.name}' is required", param=spec.name)
        return None
    if len(uploads) > 1:
        raise UnprocessableEntity(f"'{spec.name}' takes one file", param=spec.name)
    upload = uploads[0]
    data = await upload.read()
    if spec.media == "video":
        return data, check_video(data, upload.content_type, param=spec.name)
    policy = gw.settings.image_fetch
    try:
        if len(data) > _THREAD_BYTES:
            image = await asyncio.to_thread(
                image_from_upload, data, upload.content_type, policy, param=spec.name
            )
        else:
            image = image_from_upload(data, upload.content_type, policy, param=spec.name)
    except UnprocessableEntity as exc:  # the checker's words, with the field they are about
        raise UnprocessableEntity(f"'{spec.name}': {exc.message}", param=spec.name) from None
    return image.data, image.media_type


async def _form(request: Request, limit: int) -> Form:
    """The multipart form; an empty body is an empty form, so the 422 names the first missing field."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
        if not (await request.body()).strip():
            return Form({})
    return await _read_form(request, limit)


def _missing(form: Form, workflow: Workflow) -> None:
    """Every required field is there: the first one missing, in the page's order, is the 422."""
    for spec in workflow.fields:
        if not spec.required:
            continue
        present = bool(form.files.get(spec.name)) or form.fields.get(spec.name) not in (None, "")
        if not present:
            raise UnprocessableEntity(f"'{spec.name}' is required", param=spec.name)


async def create_task(request: Request, workflow: Workflow) -> JSONResponse:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    info = _served(gw, workflow)
    webhook = request.query_params.get("webhook") or None
    video = any(f.media == "video" for f in workflow.fields)
    limit = gw.settings.max_body_bytes + (VIDEO_MAX_BYTES if video else 0)
    form = await _form(request, limit)
    _missing(form, workflow)
    texts: dict[str, str] = {}
    files: dict[str, tuple[bytes, str]] = {}
    for spec in workflow.fields:
        if spec.kind == "text":
            value = _text(form, spec)
            if value is not None:
                texts[spec.name] = value
        else:
            found = await _file(gw, form, spec)
            if found is not None:
                files[spec.name] = found
    keys: dict[str, str] = {}
    try:
        for name, (data, media_type) in files.items():
            keys[name] = await gw.files.put(data, media_type)
        price = info.price
        task = await gw.tasks.create(
            key=key,
            family=FAMILY,
            kind=workflow.slug,
            model=workflow.model,
            hold=price.cost(Usage(requests=1)) if price is not None else 0,
            request={
                "workflow": workflow.id,
                "fields": texts,
                "files": keys,
                "file_types": {name: media_type for name, (_, media_type) in files.items()},
                "public_base": _public_base(request, gw),
            },
            request_id=request_id(request),
            webhook_url=webhook,
        )
    except BaseException:
        for stored in keys.values():  # refused (balance, webhook): the inputs are not kept
            with contextlib.suppress(Exception):
                await gw.files.delete(stored)
        raise
    return JSONResponse({"code": 0, "msg": "success", "data": {"taskId": task.id}})


async def check_task_status(request: Request, slug: str) -> JSONResponse:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    task_id = request.query_params.get("taskId") or ""
    if not task_id:
        raise UnprocessableEntity("'taskId' is required", param="taskId")
    task = await gw.tasks.get(task_id, key.account.id)
    if task is None or task.family != FAMILY or task.kind != slug:
        raise NotFound("There is no such task.")
    return JSONResponse(status_view(task))


def _create_endpoint(workflow: Workflow) -> Endpoint:
    async def endpoint(request: Request) -> JSONResponse:
        return await create_task(request, workflow)

    endpoint.__name__ = endpoint.__qualname__ = f"create_{workflow.id.replace('-', '_')}"
    return endpoint


def _status_endpoint(slug: str) -> Endpoint:
    async def endpoint(request: Request) -> JSONResponse:
        return await check_task_status(request, slug)

    endpoint.__name__ = endpoint.__qualname__ = f"check_{slug.replace('-', '_')}"
    return endpoint


def _ops() -> list[tuple[str, str, Endpoint, str]]:
    ops: list[tuple[str, str, Endpoint, str]] = []
    slugs: dict[str, str] = {}
    for workflow in load_workflows().values():
        ops.append(("POST", workflow.create_route, _create_endpoint(workflow), f"ComfyUI: {workflow.title}"))
        slugs.setdefault(workflow.slug, workflow.title)
    for slug in slugs:
        summary = f"ComfyUI: {slug} task status (QUEUED, RUNNING, SUCCESS, FAILED)"
        ops.append(("GET", f"/302/comfyui/{slug}/check-task-status", _status_endpoint(slug), summary))
    return ops


# (method, path, endpoint, summary): routes.py wraps each as Op(..., tag "ComfyUI", auth "client").
OPS: list[tuple[str, str, Endpoint, str]] = _ops()

__all__ = ["OPS", "check_task_status", "check_video", "create_task"]
