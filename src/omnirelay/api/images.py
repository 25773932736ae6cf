"""Image routes: the 302 unified interface (V1, V2 sync), the OpenAI Images routes, hosted files."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.common import JSONResponse, client_key, gateway, request_id
from omnirelay.core.billing import CallRecord
from omnirelay.core.fetch import image_from_upload, load_image
from omnirelay.core.images import ImageInput, ImageJob, ImageResult
from omnirelay.core.imaging import ImageOutcome, Operation
from omnirelay.core.tasks.images import task_view
from omnirelay.core.usage import Usage
from omnirelay.errors import (
    ContentRefused,
    GatewayError,
    GenerationFailed,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    UnprocessableEntity,
    UpstreamError,
)
from omnirelay.gateway import Gateway

_OUTPUT_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
_KNOWN = {"prompt", "model", "width", "height", "negative_prompt", "aspect_ratio", "output_format", "image",
          "image[]", "mask", "mask_image", "n", "size", "response_format", "seed"}  # fmt: skip


@dataclass(slots=True)
class Form:
    """A request's fields, from JSON or multipart/form-data alike."""

    fields: dict[str, Any]
    files: dict[str, list[UploadFile]] = field(default_factory=dict)

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.fields.get(name)
        if value is None or value == "":
            if required:
                raise UnprocessableEntity(f"'{name}' is required", param=name)
            return None
        if not isinstance(value, str):
            raise UnprocessableEntity(f"'{name}' must be a string", param=name)
        return value

    def integer(self, name: str, *, low: int, high: int) -> int | None:
        value = self.fields.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise UnprocessableEntity(f"'{name}' must be an integer", param=name)
        if not low <= value <= high:
            raise UnprocessableEntity(f"'{name}' must be between {low} and {high}", param=name)
        return value

    def extra(self) -> dict[str, Any]:
        return {k: v for k, v in self.fields.items() if k not in _KNOWN}


async def _read_form(request: Request, limit: int) -> Form:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form(max_files=16, max_fields=200, max_part_size=limit)
        except Exception as exc:  # malformed multipart: the parser's own message says what
            raise UnprocessableEntity(f"The form data could not be read ({exc}).") from None
        fields: dict[str, Any] = {}
        files: dict[str, list[UploadFile]] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.setdefault(name.removesuffix("[]"), []).append(value)
            else:
                fields[name] = value
        return Form(fields, files)
    raw = await request.body()
    if len(raw) > limit:
        raise PayloadTooLarge(f"The request body is larger than the {limit} byte limit.")
    if not raw.strip():
        raise UnprocessableEntity("The request body is empty; send JSON or multipart/form-data.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request ({exc.args[0]}).") from None
    if not isinstance(body, dict):
        raise UnprocessableEntity("The request body must be a JSON object.")
    return Form(body)


async def _images(gw: Gateway, form: Form, name: str) -> list[ImageInput]:
    """Input images from file parts, http(s) URLs (guarded fetch) or data:image base64 strings."""
    policy = gw.settings.image_fetch
    found: list[ImageInput] = []
    for upload in form.files.get(name, []):
        data = await upload.read()
        # Decoding checks run Pillow: big uploads go to a thread so the event loop keeps serving.
        if len(data) > 256 * 1024:
            found.append(
                await asyncio.to_thread(image_from_upload, data, upload.content_type, policy, param=name)
            )
        else:
            found.append(image_from_upload(data, upload.content_type, policy, param=name))
    value = form.fields.get(name) if name in form.fields else form.fields.get(f"{name}[]")
    values = value if isinstance(value, list) else [value] if value not in (None, "") else []
    for item in values:
        if not isinstance(item, str):
            raise UnprocessableEntity(
                f"'{name}' must be a file, an http(s) URL or a data:image string", param=name
            )
        if item.startswith("data:") or "://" in item:
            found.append(await load_image(item, http=gw.http, policy=policy, param=name))
        else:
            raise UnprocessableEntity(
                f"'{name}' must be a file, an http(s) URL or a base64 string starting with data:image",
                param=name,
            )
    return found


def _public_base(request: Request, gw: Gateway) -> str:
    configured = gw.settings.storage.public_base_url or gw.settings.public_base_url
    if configured:
        return configured.rstrip("/")
    host = request.headers.get("host") or f"{gw.settings.host}:{gw.settings.port}"
    return f"{request.url.scheme}://{host}"


def _output_format(form: Form) -> str:
    value = (form.text("output_format") or "png").lower()
    if value not in _OUTPUT_FORMATS:
        raise UnprocessableEntity("'output_format' must be png, jpeg or webp", param="output_format")
    return _OUTPUT_FORMATS[value]


async def _job_from_302_form(
    gw: Gateway, form: Form, *, model_error: type[GatewayError]
) -> tuple[ImageJob, Any]:
    prompt = form.text("prompt", required=True)
    model_id = form.text("model", required=True)
    assert prompt is not None and model_id is not None
    try:
        spec, info = gw.images.model(model_id)
    except ModelNotFound as exc:
        raise model_error(exc.message, param="model") from None
    images = await _images(gw, form, "image")
    masks = await _images(gw, form, "mask_image") or await _images(gw, form, "mask")
    job = gw.images.build_job(
        spec,
        prompt=prompt,
        width=form.integer("width", low=1, high=16384),
        height=form.integer("height", low=1, high=16384),
        size=form.text("size"),
        aspect_ratio=form.text("aspect_ratio"),
        negative_prompt=form.text("negative_prompt"),
        output_format=_output_format(form),
        n=form.integer("n", low=1, high=10) or 1,
        images=images,
        mask=masks[0] if masks else None,
        seed=form.integer("seed", low=0, high=2**32 - 1),
        extra=form.extra(),
    )
    return job, info


async def _run(
    request: Request, gw: Gateway, job: ImageJob, info: Any, endpoint: str, op: Operation | None = None
) -> ImageOutcome:
    key = gw.keys.authenticate(client_key(request.headers))
    rec = CallRecord(request_id(request), endpoint, job.spec.id, started=time.time())
    if op is None:
        return await gw.images.run(key, job, info, rec, public_base=_public_base(request, gw))
    return await gw.images.run(key, job, info, rec, public_base=_public_base(request, gw), operation=op)


# --- 302 unified interface -----------------------------------------------------------------------


async def generate_v1(request: Request) -> JSONResponse:
    """POST /302/image/generate: ``{image_url, data}`` with ``data`` the upstream's own response."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    form = await _read_form(request, gw.settings.max_body_bytes)
    job, info = await _job_from_302_form(gw, form, model_error=UnprocessableEntity)
    outcome = await _run(request, gw, job, info, "/302/image/generate")
    return JSONResponse({"image_url": outcome.images[0].url, "data": outcome.raw})


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def task_object(task_id: str, job: ImageJob, req: dict[str, Any], outcome: ImageOutcome | None, *,
                error: GatewayError | None, started: float, rid: str) -> dict[str, Any]:  # fmt: skip
    """The 302 Format V2 task object; shared by the synchronous mode and the task engine."""
    finished = outcome.finished if outcome is not None else time.time()
    urls = [image.url for image in outcome.images] if outcome is not None else []
    body: dict[str, Any] = {
        "task_id": task_id,
        "status": "completed" if outcome is not None else "failed",
        "task_type": "image",
        "model": job.spec.id,
        "req": req,
        "image_url": urls[0] if urls else None,
        "image_urls": urls,
        "raw_response": outcome.raw if outcome is not None else None,
        "created_at": _iso(started),
        "updated_at": _iso(finished),
        "completed_at": _iso(finished),
        "execution_time": f"{finished - started:.2f}",
        "attempts": outcome.polls if outcome is not None else 0,
        "upstream_task_id": outcome.upstream_task_id if outcome is not None else None,
        "webhook": "",
        "ai302_cost_request_ids": [rid],
    }
    if error is not None:
        body["error"] = {"error": error.code, "message": error.message, "error_type": error.type}
    return body


async def generate_v2(request: Request) -> JSONResponse:
    """POST /302/v2/image/generate in its synchronous mode: a completed or failed task object."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    webhook = request.query_params.get("webhook") or None
    run_async = request.query_params.get("run_async", "").lower() in ("true", "1") or webhook is not None
    form = await _read_form(request, gw.settings.max_body_bytes)
    job, info = await _job_from_302_form(gw, form, model_error=UnprocessableEntity)
    if run_async:
        return await _submit_v2_task(request, gw, key, form, job, info, webhook)
    started = time.time()
    # The request as echoed in the task: inline image data is left out, URLs are kept.
    req = {k: v for k, v in form.fields.items() if not (isinstance(v, str) and v.startswith("data:"))}
    task_id = str(uuid.uuid4())
    rid = request_id(request)
    try:
        outcome = await _run(request, gw, job, info, "/302/v2/image/generate")
    except (GenerationFailed, ContentRefused, UpstreamError, RateLimited, Unavailable) as exc:
        # The call was accepted and routed: its failure is the task's verdict, not an HTTP error.
        return JSONResponse(task_object(task_id, job, req, None, error=exc, started=started, rid=rid))
    return JSONResponse(task_object(task_id, job, req, outcome, error=None, started=started, rid=rid))


async def _submit_v2_task(
    request: Request, gw: Gateway, key: Any, form: Form, job: ImageJob, info: Any, webhook: str | None
) -> JSONResponse:
    """Async mode: inputs go to storage, the task row is written, the worker does the rest."""
    files = gw.files
    inputs = [await files.put(image.data, image.media_type) for image in job.images]
    mask = await files.put(job.mask.data, job.mask.media_type) if job.mask is not None else None
    params = {
        "prompt": job.prompt,
        "width": job.width,
        "height": job.height,
        "size": job.size,
        "aspect_ratio": job.aspect_ratio,
        "negative_prompt": job.negative_prompt,
        "output_format": job.output_format,
        "n": job.n,
        "seed": job.seed,
        "extra": job.extra,
    }
    req = {k: v for k, v in form.fields.items() if not (isinstance(v, str) and v.startswith("data:"))}
    price = info.price
    hold = price.cost(Usage(requests=job.n)) if price is not None else 0
    task = await gw.tasks.create(
        key=key,
        family="image_v2",
        kind="image",
        model=job.spec.id,
        hold=hold,
        request={
            "req": req,
            "job": params,
            "inputs": inputs,
            "mask": mask,
            "public_base": _public_base(request, gw),
        },
        request_id=request_id(request),
        webhook_url=webhook,
    )
    return JSONResponse(
        {"task_id": task.id, "status": "pending", "created_at": task_view(task)["created_at"]}
    )


async def fetch_v2(request: Request) -> JSONResponse:
    """GET /302/v2/image/fetch/{task_id}: the task object; another account's task is a 404."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    task = await gw.tasks.get(request.path_params["task_id"], key.account.id)
    if task is None or task.family != "image_v2":
        raise NotFound("There is no such task.")
    return JSONResponse(task_view(task))


# --- OpenAI Images format ------------------------------------------------------------------------


def _openai_response(outcome: ImageOutcome, response_format: str) -> JSONResponse:
    data = []
    for image in outcome.images:
        if response_format == "b64_json":
            data.append({"b64_json": base64.b64encode(image.data).decode()})
        else:
            data.append({"url": image.url})
    body: dict[str, Any] = {"created": int(outcome.finished), "data": data}
    raw = outcome.raw
    if isinstance(raw, dict) and isinstance(raw.get("usage"), dict):
        body["usage"] = raw["usage"]
    return JSONResponse(body)


def _response_format(form: Form, request: Request) -> str:
    value = form.text("response_format") or request.query_params.get("response_format") or "url"
    if value not in ("url", "b64_json"):
        raise InvalidRequest("'response_format' must be url or b64_json", param="response_format")
    return value


async def _openai_job(
    gw: Gateway, form: Form, *, require_image: bool | None, require_prompt: bool = True
) -> tuple[ImageJob, Any]:
    prompt = form.text("prompt", required=require_prompt)
    model_id = form.text("model") or "dall-e-2"
    spec, info = gw.images.model(model_id)
    images = await _images(gw, form, "image")
    masks = await _images(gw, form, "mask")
    job = gw.images.build_job(
        spec,
        prompt=prompt or "",
        size=form.text("size"),
        aspect_ratio=form.text("aspect_ratio"),
        negative_prompt=form.text("negative_prompt"),
        output_format=_output_format(form),
        n=form.integer("n", low=1, high=10) or 1,
        images=images,
        mask=masks[0] if masks else None,
        extra=form.extra(),
        require_image=require_image,
    )
    return job, info


async def openai_generations(request: Request) -> JSONResponse:
    """POST /v1/images/generations and /302/images/generations (any catalog image model)."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    form = await _read_form(request, gw.settings.max_body_bytes)
    response_format = _response_format(form, request)
    job, info = await _openai_job(gw, form, require_image=None)
    outcome = await _run(request, gw, job, info, request.url.path)
    return _openai_response(outcome, response_format)


async def _edit(adapter: Any, job: ImageJob, key: str, timeout_s: float) -> ImageResult:
    edit = getattr(adapter, "edit_image", None)
    result: ImageResult = await (edit or adapter.generate_image)(job, key, timeout_s)
    return result


async def _vary(adapter: Any, job: ImageJob, key: str, timeout_s: float) -> ImageResult:
    vary = getattr(adapter, "vary_image", None)
    if vary is None:
        raise InvalidRequest(f"The model `{job.spec.id}` does not make variations.", param="model")
    result: ImageResult = await vary(job, key, timeout_s)
    return result


async def openai_edits(request: Request) -> JSONResponse:
    """POST /v1/images/edits and /302/images/edits (multipart: image, mask, prompt, model, n, size)."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    form = await _read_form(request, gw.settings.max_body_bytes)
    response_format = _response_format(form, request)
    job, info = await _openai_job(gw, form, require_image=True)
    outcome = await _run(request, gw, job, info, request.url.path, _edit)
    return _openai_response(outcome, response_format)


async def openai_variations(request: Request) -> JSONResponse:
    """POST /v1/images/variations (DALL·E 2; multipart: image, model, n, size)."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    form = await _read_form(request, gw.settings.max_body_bytes)
    response_format = _response_format(form, request)
    job, info = await _openai_job(gw, form, require_image=True, require_prompt=False)
    outcome = await _run(request, gw, job, info, request.url.path, _vary)
    return _openai_response(outcome, response_format)


# --- hosted files --------------------------------------------------------------------------------


async def serve_file(request: Request) -> Response:
    """GET /files/{day}/{name}: results, by unguessable name, cacheable for a year."""
    gw = gateway(request)
    key = f"{request.path_params['day']}/{request.path_params['name']}"
    stored = await gw.files.get(key)
    if stored is None:
        raise NotFound("There is no such file.")
    etag = stored.etag  # already a quoted entity tag
    headers = {
        "Cache-Control": "public, max-age=31536000, immutable",
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(stored.data, media_type=stored.media_type, headers=headers)
