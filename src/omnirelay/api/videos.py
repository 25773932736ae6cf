"""Video routes: the 302 unified video V2 interface and the two Kling formats, one task family.

* ``POST /302/v2/video/create`` (JSON or multipart, ``?webhook=``) -> ``{task_id, status, created_at}``;
  ``GET /302/v2/video/fetch/{task_id}`` -> the V2 task object; ``GET /302/v2/model/video`` -> the
  model catalogue with per-model parameters.
* Kling "302 format": ``POST /klingai/m2v_*`` (multipart; the path picks model, mode, duration and
  quality, see ``KLING_302``) -> ``{result: 1, message, data: {task: {id}, works: []}}``;
  ``GET /klingai/task/{task_id}/fetch`` -> ``{result: 1, data: {task, status: 5|10|50|99, works}}``.
* Kling official format: ``POST /klingai/v1/videos/text2video`` | ``image2video`` (Kling's own body)
  -> Kling's envelope ``{code: 0, message, data: {task_id, task_status}}``;
  ``GET /klingai/v1/videos/{type}/{task_id}`` -> ``{code: 0, data: {task_id, task_status,
  task_result: {videos: [{url, duration}]}}}``.

Every create writes one ``video_v2`` task (core/tasks/videos.py); a task made through any format can
be fetched through every format. Input images are checked by the guarded fetcher and stored at
submit; a source ``video`` is a URL only, vetted by the same address rules as webhooks.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from omnirelay.api.common import JSONResponse, client_key, gateway, request_id
from omnirelay.api.images import Form, _images, _public_base, _read_form
from omnirelay.core.fetch import vet_outbound_url
from omnirelay.core.images import ImageInput
from omnirelay.core.tasks.model import Task
from omnirelay.core.tasks.videos import FAMILY, KIND, iso, public_status, task_view
from omnirelay.core.usage import Usage
from omnirelay.core.videos import (
    CORE_FIELDS,
    VideoModelSpec,
    billing_units,
    check_mode,
    check_parameter,
    default_catalog,
    infer_mode,
    parse_duration,
    trim_inline,
)
from omnirelay.errors import NotFound, PermissionDenied, UnprocessableEntity
from omnirelay.gateway import Gateway
from omnirelay.money import usd_str

# --- shared ---------------------------------------------------------------------------------------


def new_task_id() -> str:
    """A numeric task id, as 302 gives video tasks (18 digits, about 60 random bits)."""
    return str(10**17 + secrets.randbelow(9 * 10**17))


@dataclass(slots=True)
class Draft:
    """A create request in any format, before the checks."""

    spec: VideoModelSpec
    prompt: str
    images: list[ImageInput]
    end_images: list[ImageInput]
    video_url: str | None = None
    negative_prompt: str | None = None
    duration: int | None = None
    resolution: Any = None
    aspect_ratio: Any = None
    fps: Any = None
    extra: dict[str, Any] | None = None
    require_mode: str | None = None  # a format whose path fixes the mode (Kling 302)


def _model(gw: Gateway, name: str) -> VideoModelSpec:
    spec = default_catalog().get(name)
    if spec is None or not gw.router.has_model(spec.id):
        raise UnprocessableEntity(
            f"The video model `{name}` does not exist or is not served here.", param="model"
        )
    info = gw.prices.get(spec.id)
    if info is None or not info.billable:
        raise PermissionDenied(
            f"The model `{spec.id}` has no price on this gateway, so it cannot be used.", param="model"
        )
    return spec


async def _video_url(gw: Gateway, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnprocessableEntity("'video' must be an http(s) URL", param="video")
    await vet_outbound_url(value, gw.settings.image_fetch, param="video", what="video URL")
    return value.strip()


def _text(value: Any, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise UnprocessableEntity(f"'{name}' must be a string", param=name)
    return value


async def _create(
    request: Request,
    gw: Gateway,
    key: Any,
    draft: Draft,
    *,
    fmt: str,
    req: dict[str, Any],
    webhook: str | None,
    more: dict[str, Any] | None = None,
) -> Task:
    """Check the draft against the model's row, store the inputs, write the task row."""
    spec = draft.spec
    if len(draft.images) + len(draft.end_images) > 2:
        raise UnprocessableEntity("Send at most two images: a first frame and a last frame.", param="image")
    image = draft.images[0] if draft.images else None
    end_image = (
        draft.end_images[0] if draft.end_images else (draft.images[1] if len(draft.images) > 1 else None)
    )
    mode = draft.require_mode or infer_mode(
        image=image is not None, end_image=end_image is not None, video=draft.video_url is not None
    )
    if mode == "i2v" and image is None and end_image is None:
        raise UnprocessableEntity(f"The model `{spec.id}` needs an input image here.", param="image")
    check_mode(spec, mode, end_image=end_image is not None)
    duration = parse_duration(draft.duration)
    if duration is not None:
        duration = int(check_parameter(spec, "duration", duration))
    values: dict[str, Any] = {}
    for name in ("resolution", "aspect_ratio", "fps"):
        raw = getattr(draft, name)
        if raw is not None and raw != "":
            values[name] = str(check_parameter(spec, name, raw))
    extra = {name: check_parameter(spec, name, value) for name, value in (draft.extra or {}).items()}
    files = gw.files
    base = _public_base(request, gw)
    stored = {
        "image": await files.put(image.data, image.media_type) if image else None,
        "end_image": await files.put(end_image.data, end_image.media_type) if end_image else None,
    }
    units = billing_units(spec, duration)
    info = gw.prices.get(spec.id)
    hold = info.price.cost(Usage(requests=units)) if info is not None and info.price is not None else 0
    request_body = {
        "req": trim_inline(req),
        "format": fmt,
        "job": {
            "prompt": draft.prompt,
            "mode": mode,
            "negative_prompt": draft.negative_prompt,
            "video_url": draft.video_url,
            "duration": duration,
            "fps": values.get("fps"),
            "resolution": values.get("resolution"),
            "aspect_ratio": values.get("aspect_ratio"),
            "extra": extra,
        },
        **stored,
        "image_url": f"{base}/files/{stored['image']}" if stored["image"] else None,
        "end_image_url": f"{base}/files/{stored['end_image']}" if stored["end_image"] else None,
        "public_base": base,
        "units": units,
        **(more or {}),
    }
    try:
        return await gw.tasks.create(
            key=key,
            family=FAMILY,
            kind=KIND,
            model=spec.id,
            hold=hold,
            request=request_body,
            request_id=request_id(request),
            webhook_url=webhook,
            task_id=new_task_id(),
        )
    except BaseException:
        # Refused (balance, webhook URL) or interrupted: the inputs stored for it are not needed.
        for stored_key in stored.values():
            if stored_key:
                await files.delete(stored_key)
        raise


async def _own_task(request: Request) -> tuple[Gateway, Task]:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    task = await gw.tasks.get(request.path_params["task_id"], key.account.id)
    if task is None or task.family != FAMILY:
        raise NotFound("There is no such task.")
    return gw, task


# --- 302 unified V2 -------------------------------------------------------------------------------


async def create_v2(request: Request) -> JSONResponse:
    """POST /302/v2/video/create: always asynchronous; ``?webhook=`` is called when it finishes."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    webhook = request.query_params.get("webhook") or None
    form = await _read_form(request, gw.settings.max_body_bytes)
    model = form.text("model", required=True)
    prompt = form.text("prompt", required=True)
    assert model is not None and prompt is not None
    spec = _model(gw, model)
    draft = Draft(
        spec=spec,
        prompt=prompt,
        images=await _images(gw, form, "image"),
        end_images=await _images(gw, form, "end_image"),
        video_url=await _video_url(gw, form.fields.get("video")),
        negative_prompt=form.text("negative_prompt"),
        duration=form.fields.get("duration"),
        resolution=form.fields.get("resolution"),
        aspect_ratio=form.fields.get("aspect_ratio"),
        fps=form.fields.get("fps"),
        extra={k: v for k, v in form.fields.items() if k not in CORE_FIELDS},
    )
    task = await _create(request, gw, key, draft, fmt="v2", req=dict(form.fields), webhook=webhook)
    return JSONResponse({"task_id": task.id, "status": "pending", "created_at": iso(task.created_at)})


async def fetch_v2(request: Request) -> JSONResponse:
    """GET /302/v2/video/fetch/{task_id}: the task object; another account's task is a 404."""
    _, task = await _own_task(request)
    return JSONResponse(task_view(task))


def parameter_view(param: dict[str, Any]) -> dict[str, Any]:
    """A catalog parameter in the 302 catalogue's shape (``range.type`` list or range)."""
    view: dict[str, Any] = {
        "name": param["name"],
        "required": bool(param.get("required", False)),
        "description": str(param.get("description", "")),
    }
    if "max_num" in param:
        view["max_num"] = param["max_num"]
    if isinstance(param.get("options"), list):
        view["range"] = {"type": "list", "list": {"options": list(param["options"])}}
    elif isinstance(param.get("range"), dict):
        bounds = param["range"]
        view["range"] = {"type": "range", "range": {k: bounds.get(k) for k in ("min", "max", "step")}}
    if "default" in param:
        view["default"] = param["default"]
    return view


def model_view(spec: VideoModelSpec, per_video: int | None) -> dict[str, Any]:
    price = usd_str(per_video) if per_video is not None else None
    seconds = spec.default_duration
    return {
        "model_name": spec.id,
        "display_name": spec.display_name,
        "provider": spec.provider,
        "provider_en": spec.provider_en,
        "provider_jp": spec.provider_jp,
        "price_text": f"{price} PTC/次（{seconds}秒）" if price else "",
        "price_text_en": f"{price} PTC per {seconds} s video" if price else "",
        "price_text_jp": f"{price} PTC/本（{seconds}秒）" if price else "",
        "description": spec.description,
        "description_en": spec.description_en,
        "description_jp": spec.description_jp,
        "capabilities": dict(spec.capabilities),
        "default_duration": seconds,
        "parameters": [parameter_view(p) for p in spec.parameters],
    }


async def list_models(request: Request) -> JSONResponse:
    """GET /302/v2/model/video: every video model served here, with its parameters and price."""
    gw = gateway(request)
    gw.keys.authenticate(client_key(request.headers))
    models = []
    for spec in default_catalog().all():
        info = gw.prices.get(spec.id)
        if not gw.router.has_model(spec.id) or info is None or not info.billable:
            continue
        per_video = info.price.per_request if info.price is not None else None
        models.append(model_view(spec, per_video))
    return JSONResponse({"total": len(models), "models": models})


# --- Kling "302 format" ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KlingVariant:
    model: str  # a catalog id
    mode: str  # t2v | i2v
    duration: int
    quality: str  # Kling's mode: std | pro


# path (under /klingai/) -> what it means
KLING_302: dict[str, KlingVariant] = {
    "m2v_txt2video": KlingVariant("kling-v1", "t2v", 5, "std"),
    "m2v_txt2video_hq_5s": KlingVariant("kling-v1", "t2v", 5, "pro"),
    "m2v_txt2video_hq_10s": KlingVariant("kling-v1", "t2v", 10, "pro"),
    "m2v_img2video": KlingVariant("kling-v1", "i2v", 5, "std"),
    "m2v_img2video_10s": KlingVariant("kling-v1", "i2v", 10, "std"),
    "m2v_img2video_hq": KlingVariant("kling-v1", "i2v", 5, "pro"),
    "m2v_img2video_hq_10s": KlingVariant("kling-v1", "i2v", 10, "pro"),
    "m2v_15_img2video": KlingVariant("kling-v1.5", "i2v", 5, "pro"),
    "m2v_15_img2video_10s": KlingVariant("kling-v1.5", "i2v", 10, "pro"),
    "m2v_16_txt2video_5s": KlingVariant("kling-v1.6", "t2v", 5, "std"),
    "m2v_16_txt2video_10s": KlingVariant("kling-v1.6", "t2v", 10, "std"),
    "m2v_16_txt2video_hq_5s": KlingVariant("kling-v1.6", "t2v", 5, "pro"),
    "m2v_16_txt2video_hq_10s": KlingVariant("kling-v1.6", "t2v", 10, "pro"),
    "m2v_16_img2video_5s": KlingVariant("kling-v1.6", "i2v", 5, "std"),
    "m2v_16_img2video_10s": KlingVariant("kling-v1.6", "i2v", 10, "std"),
    "m2v_16_img2video_hq_5s": KlingVariant("kling-v1.6", "i2v", 5, "pro"),
    "m2v_16_img2video_hq_10s": KlingVariant("kling-v1.6", "i2v", 10, "pro"),
}
# Kling web camera moves: one axis of a "simple" move, or a named master shot.
_CAMERA_AXES = frozenset({"horizontal", "vertical", "pan", "tilt", "roll", "zoom"})
_CAMERA_SHOTS = frozenset({"down_back", "forward_up", "right_turn_forward", "left_turn_forward"})
KLING_302_STATUS = {"pending": 5, "processing": 10, "failed": 50, "completed": 99}


def camera_control(camera_type: str | None, camera_value: Any) -> dict[str, Any] | None:
    """The 302 form's ``camera_type`` / ``camera_value`` as Kling's ``camera_control`` object."""
    if not camera_type or camera_type in ("empty", "none"):
        return None
    if camera_type in _CAMERA_SHOTS:
        return {"type": camera_type}
    if camera_type not in _CAMERA_AXES:
        shown = ", ".join(sorted(_CAMERA_AXES | _CAMERA_SHOTS))
        raise UnprocessableEntity(f"'camera_type' must be one of {shown}", param="camera_type")
    try:
        value = float(camera_value if camera_value not in (None, "") else 0)
    except (TypeError, ValueError):
        raise UnprocessableEntity("'camera_value' must be a number", param="camera_value") from None
    if not -10 <= value <= 10:
        raise UnprocessableEntity("'camera_value' must be between -10 and 10", param="camera_value")
    config = dict.fromkeys(sorted(_CAMERA_AXES), 0.0)
    config[camera_type] = value
    return {"type": "simple", "config": config}


def _kling_302_task(task: Task) -> dict[str, Any]:
    status = KLING_302_STATUS.get(public_status(task), 5)
    return {
        "id": task.id,
        "status": status,
        "type": task.request.get("kling_path", ""),
        "createTime": int(task.created_at * 1000),
        "updateTime": int(task.updated_at * 1000),
    }


def kling_302_view(task: Task) -> dict[str, Any]:
    status = KLING_302_STATUS.get(public_status(task), 5)
    url = (task.result or {}).get("video_url")
    works = [{"resource": {"resource": url}, "cover": {"resource": ""}}] if url and status == 99 else []
    data: dict[str, Any] = {"task": _kling_302_task(task), "status": status, "works": works}
    if task.error:
        data["message"] = task.error.get("message", "")
    return {"result": 1, "message": "success", "data": data}


async def kling_302_create(request: Request) -> JSONResponse:
    """POST /klingai/m2v_*: multipart prompt, negative_prompt, cfg, aspect_ratio, camera_*, input_image."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    name = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    variant = KLING_302.get(name)
    if variant is None:  # pragma: no cover - only the paths of KLING_302 are routed here
        raise NotFound("There is no such Kling endpoint.")
    form = await _read_form(request, gw.settings.max_body_bytes)
    prompt = form.text("prompt", required=variant.mode == "t2v") or ""
    spec = _model(gw, variant.model)
    extra: dict[str, Any] = {"mode": variant.quality}
    cfg = form.fields.get("cfg")
    if cfg not in (None, ""):
        extra["cfg_scale"] = cfg
    camera = camera_control(form.text("camera_type"), form.fields.get("camera_value"))
    if camera is not None:
        extra["camera_control"] = camera
    images = await _images(gw, form, "input_image") if variant.mode == "i2v" else []
    tails = await _images(gw, form, "tail_image") if variant.mode == "i2v" else []
    draft = Draft(
        spec=spec,
        prompt=prompt,
        images=images,
        end_images=tails,
        negative_prompt=form.text("negative_prompt"),
        duration=variant.duration,
        aspect_ratio=form.fields.get("aspect_ratio") if variant.mode == "t2v" else None,
        extra=extra,
        require_mode=variant.mode,
    )
    task = await _create(
        request,
        gw,
        key,
        draft,
        fmt="kling302",
        req=dict(form.fields),
        webhook=None,
        more={"kling_path": name},
    )
    return JSONResponse(
        {"result": 1, "message": "success", "data": {"task": _kling_302_task(task), "works": []}}
    )


async def kling_302_fetch(request: Request) -> JSONResponse:
    """GET /klingai/task/{task_id}/fetch: status 5 queued, 10 processing, 50 failed, 99 completed."""
    _, task = await _own_task(request)
    return JSONResponse(kling_302_view(task))


# --- Kling official format ------------------------------------------------------------------------

KLING_TYPES = {"text2video": "t2v", "image2video": "i2v"}
KLING_STATUS = {
    "pending": "submitted",
    "processing": "processing",
    "completed": "succeed",
    "failed": "failed",
}
_KLING_OWN_FIELDS = frozenset(
    {
        "model_name",
        "model",
        "prompt",
        "negative_prompt",
        "image",
        "image_tail",
        "duration",
        "aspect_ratio",
        "callback_url",
    }
)


def _kling_image(value: Any) -> Any:
    """Kling takes an image as a URL or as bare base64: bare base64 becomes a data URL for the fetcher."""
    if isinstance(value, str) and value and not value.startswith("data:") and "://" not in value:
        return f"data:image/png;base64,{value}"
    return value


def kling_view(task: Task, rid: str) -> dict[str, Any]:
    status = public_status(task)
    result = task.result or {}
    data: dict[str, Any] = {
        "task_id": task.id,
        "task_status": KLING_STATUS.get(status, "submitted"),
        "task_status_msg": (task.error or {}).get("message", ""),
        "created_at": int(task.created_at * 1000),
        "updated_at": int(task.updated_at * 1000),
    }
    if status == "completed" and result.get("video_url"):
        duration = result.get("duration") or (task.request.get("job") or {}).get("duration")
        video = {
            "id": str(result.get("file", "")),
            "url": result["video_url"],
            "duration": str(duration or ""),
        }
        data["task_result"] = {"videos": [video]}
    return {"code": 0, "message": "SUCCEED", "request_id": rid, "data": data}


async def kling_create(request: Request) -> JSONResponse:
    """POST /klingai/v1/videos/text2video | image2video with Kling's own body."""
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    kind = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    mode = KLING_TYPES[kind]
    form = await _read_form(request, gw.settings.max_body_bytes)
    name = _text(form.fields.get("model_name") or form.fields.get("model"), "model_name") or "kling-v1"
    found = default_catalog().by_upstream("kling", name) or default_catalog().get(name)
    spec = _model(gw, found.id if found is not None and found.adapter == "kling" else name)
    if spec.adapter != "kling":
        raise UnprocessableEntity(f"`{name}` is not a Kling model.", param="model_name")
    fields = {name: _kling_image(form.fields.get(name)) for name in ("image", "image_tail")}
    images_form = Form(fields, form.files)
    prompt = _text(form.fields.get("prompt"), "prompt")
    if mode == "t2v" and not prompt:
        raise UnprocessableEntity("'prompt' is required", param="prompt")
    callback = _text(form.fields.get("callback_url"), "callback_url")
    draft = Draft(
        spec=spec,
        prompt=prompt or "",
        images=await _images(gw, images_form, "image") if mode == "i2v" else [],
        end_images=await _images(gw, images_form, "image_tail") if mode == "i2v" else [],
        negative_prompt=_text(form.fields.get("negative_prompt"), "negative_prompt"),
        duration=form.fields.get("duration"),
        aspect_ratio=form.fields.get("aspect_ratio") if mode == "t2v" else None,
        extra={k: v for k, v in form.fields.items() if k not in _KLING_OWN_FIELDS and v is not None},
        require_mode=mode,
    )
    task = await _create(request, gw, key, draft, fmt="kling", req=dict(form.fields), webhook=callback)
    body = kling_view(task, request_id(request))
    return JSONResponse(
        {**body, "data": {k: body["data"][k] for k in ("task_id", "task_status", "created_at", "updated_at")}}
    )


async def kling_fetch(request: Request) -> JSONResponse:
    """GET /klingai/v1/videos/{type}/{task_id}: Kling's task envelope."""
    if request.path_params.get("type") not in KLING_TYPES:
        raise NotFound("There is no such Kling task type.")
    _, task = await _own_task(request)
    return JSONResponse(kling_view(task, request_id(request)))


# --- the route table rows -------------------------------------------------------------------------

Endpoint = Callable[[Request], Awaitable[Any]]
# (method, path, endpoint, summary): the rows for api/routes.py (tag "Video", auth "client").
OPS: tuple[tuple[str, str, Endpoint, str], ...] = (
    ("POST", "/302/v2/video/create", create_v2, "Unified video generation V2 (async; ?webhook=)"),
    ("GET", "/302/v2/video/fetch/{task_id}", fetch_v2, "A V2 video task"),
    ("GET", "/302/v2/model/video", list_models, "Video models with their parameters"),
    *(("POST", f"/klingai/{name}", kling_302_create, f"Kling 302 format: {name}") for name in KLING_302),
    ("GET", "/klingai/task/{task_id}/fetch", kling_302_fetch, "A Kling 302-format task"),
    ("POST", "/klingai/v1/videos/text2video", kling_create, "Kling official format: text to video"),
    ("POST", "/klingai/v1/videos/image2video", kling_create, "Kling official format: image to video"),
    ("GET", "/klingai/v1/videos/{type}/{task_id}", kling_fetch, "A Kling official-format task"),
)
