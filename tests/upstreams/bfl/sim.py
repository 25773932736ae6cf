"""In-process simulator of the Black Forest Labs Flux API (api.bfl.ai), for the ``bfl`` adapter.

Wire format as in BFL's API reference: ``POST /v1/{model}`` with the key in ``x-key`` answers
``{"id", "polling_url"}``; ``GET /v1/get_result?id=`` answers ``{"id", "status", "result",
"progress", "details", "preview"}`` with ``status`` one of ``Pending``, ``Ready``, ``Error``,
``Request Moderated``, ``Content Moderated`` or ``Task not found``; ``result.sample`` is the URL of
the image. Errors are FastAPI-shaped: ``{"detail": "text"}``, or for validation (422)
``{"detail": [{"type", "loc", "msg", "input"}]}``. A missing or wrong key is answered 403
``Not authenticated - Invalid Authentication``, as the real API does.

Behaviour knobs come from ``ImageSimConfig`` (tests/upstreams/imaging.py): ``fail_next`` (checked
after auth, on submits and polls alike), ``polls_before_ready`` (get_result calls answered
``Pending`` before the verdict), ``fail_jobs_next`` (→ ``Error``), ``moderate_jobs_next``
(→ ``Content Moderated``). A prompt containing ``[request-moderated]`` is refused at once with a
task whose status is ``Request Moderated``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import time
import uuid
from typing import Any

from aiohttp import web
from PIL import Image

from tests.upstreams.imaging import JSON, Handler, ImageSim, Job, Recorded

_RECORD = web.RequestKey("bfl_sim_recorded", Recorded)
ULTRA_MODELS = frozenset({"flux-pro-1.1-ultra", "flux-pro-1.1-ultra-finetuned"})
SIZED_MODELS = frozenset({"flux-pro-1.1", "flux-pro", "flux-dev", "flux-pro-finetuned"})
FILL_MODELS = frozenset({"flux-pro-1.0-fill", "flux-pro-1.0-fill-finetuned"})
CONTROL_MODELS = frozenset(
    {
        "flux-pro-1.0-canny",
        "flux-pro-1.0-depth",
        "flux-pro-1.0-canny-finetuned",
        "flux-pro-1.0-depth-finetuned",
    }
)
MODELS = ULTRA_MODELS | SIZED_MODELS | FILL_MODELS | CONTROL_MODELS
AUTH_FAILED = "Not authenticated - Invalid Authentication"
REQUEST_MODERATION_MARK = "[request-moderated]"


class _Invalid(Exception):
    def __init__(self, loc: str, msg: str, kind: str, value: Any = None) -> None:
        super().__init__(msg)
        self.item: JSON = {"type": kind, "loc": ["body", loc], "msg": msg, "input": value}


def _decode_image(field: str, value: Any) -> tuple[int, int]:
    """Size of a base64 image field (a data URL prefix is tolerated), or a 422."""
    if not isinstance(value, str) or not value:
        raise _Invalid(field, "Input should be a valid string", "string_type", value)
    raw = value.split(",", 1)[1] if value.startswith("data:") else value
    try:
        data = base64.b64decode(raw, validate=True)
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (binascii.Error, ValueError, OSError):
        raise _Invalid(field, f"{field} is not a valid base64-encoded image", "value_error") from None


def ratio_size(ratio: str) -> tuple[int, int]:
    """Result size for an Ultra aspect ratio, kept small for fast tests: the longer side is 512."""
    w, h = (int(x) for x in ratio.split(":"))
    scale = 512 / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


class BFLSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v1/get_result", self._get_result),
            web.post("/v1/{model}", self._submit),
        ]

    # --- request recording -------------------------------------------------------------------
    # ImageSim's middleware keeps the record under a plain string key, which aiohttp warns about
    # (NotAppKeyWarning: an error under the suite's ``filterwarnings = error``, also when this
    # simulator runs in a thread beside a gateway). The same recording, under a web.RequestKey.

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_files/"):
            record = Recorded(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
            )
            self.requests.append(record)
            request[_RECORD] = record
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
        return await handler(request)

    async def read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        record = request[_RECORD]
        record.body = raw
        try:
            record.json = json.loads(raw) if raw else None
        except ValueError:
            record.json = None
        return record.json

    def error_body(self, status: int, message: str) -> JSON:
        return {"detail": message}

    # --- helpers ------------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-key") not in self.api_keys:
            return web.json_response({"detail": AUTH_FAILED}, status=403)
        return None

    def _validate(self, model: str, body: Any) -> tuple[int, int]:
        """Checks the body as the API does; returns the size of the image it will make."""
        if not isinstance(body, dict):
            raise _Invalid("body", "Input should be a valid dictionary", "dict_type", body)
        prompt = body.get("prompt")
        if model not in FILL_MODELS and (not isinstance(prompt, str) or not prompt):
            raise _Invalid("prompt", "Field required", "missing", prompt)
        fmt = body.get("output_format", "jpeg")
        if fmt not in ("jpeg", "png"):
            raise _Invalid("output_format", "Input should be 'jpeg' or 'png'", "enum", fmt)
        seed = body.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise _Invalid("seed", "Input should be a valid integer", "int_type", seed)
        tolerance = body.get("safety_tolerance", 2)
        if not isinstance(tolerance, int) or not 0 <= tolerance <= 6:
            raise _Invalid(
                "safety_tolerance", "Input should be between 0 and 6", "less_than_equal", tolerance
            )
        if "finetuned" in model:
            if not isinstance(body.get("finetune_id"), str) or not body["finetune_id"]:
                raise _Invalid("finetune_id", "Field required", "missing", body.get("finetune_id"))
            strength = body.get("finetune_strength", 1.1)
            if not isinstance(strength, (int, float)) or not 0 <= strength <= 2:
                raise _Invalid("finetune_strength", "Input should be between 0 and 2", "range", strength)
        if body.get("image_prompt") is not None:
            _decode_image("image_prompt", body["image_prompt"])
        if model in ULTRA_MODELS:
            ratio = body.get("aspect_ratio", "16:9")
            try:
                w, h = (int(x) for x in str(ratio).split(":"))
                ok = w > 0 and h > 0 and 9 / 21 <= w / h <= 21 / 9
            except ValueError:
                ok = False
            if not ok:
                raise _Invalid(
                    "aspect_ratio", "Aspect ratio must be between 21:9 and 9:21", "value_error", ratio
                )
            return ratio_size(str(ratio))
        if model in SIZED_MODELS:
            sides = []
            for name, default in (("width", 1024), ("height", 768)):
                value = body.get(name, default)
                if not isinstance(value, int) or value % 32 or not 256 <= value <= 1440:
                    raise _Invalid(
                        name, "Input should be a multiple of 32 between 256 and 1440", "value_error", value
                    )
                sides.append(value)
            return sides[0], sides[1]
        if model in FILL_MODELS:
            size = _decode_image("image", body.get("image"))
            if body.get("mask") is not None and _decode_image("mask", body["mask"]) != size:
                raise _Invalid("mask", "The mask must have the same size as the image", "value_error")
            return size
        return _decode_image("control_image", body.get("control_image"))

    def _answer(self, job: Job) -> JSON:
        base: JSON = {"id": job.id, "result": None, "progress": None, "details": None, "preview": None}
        if job.polls <= self.config.polls_before_ready:
            progress = round(job.polls / (self.config.polls_before_ready + 1), 3)
            return {**base, "status": "Pending", "progress": progress}
        request: JSON = job.request
        if job.outcome == "request_moderated":
            return {**base, "status": "Request Moderated", "details": {"Moderation Reasons": ["Prompt"]}}
        if job.outcome == "moderated":
            return {
                **base,
                "status": "Content Moderated",
                "details": {"Moderation Reasons": ["Derivative Works Filter"]},
            }
        if job.outcome == "failed":
            return {**base, "status": "Error", "details": {"message": "Internal error during generation"}}
        if not job.outputs:
            width, height = request["_size"]
            job.outputs.append(self.host_image(width, height, request.get("output_format", "jpeg")))
        started = request["_submitted"]
        return {
            **base,
            "status": "Ready",
            "progress": 1.0,
            "result": {
                "sample": job.outputs[0],
                "prompt": request.get("prompt", ""),
                "seed": request.get("seed", 42),
                "start_time": started,
                "end_time": started + 1.5,
                "duration": 1.5,
            },
        }

    # --- routes -------------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        model = request.match_info["model"]
        if model not in MODELS:
            return web.json_response({"detail": "Not Found"}, status=404)
        try:
            size = self._validate(model, body)
        except _Invalid as exc:
            return web.json_response({"detail": [exc.item]}, status=422)
        task_id = str(uuid.uuid4())
        outcome = self.job_outcome()
        if REQUEST_MODERATION_MARK in str(body.get("prompt", "")):
            outcome = "request_moderated"
        stored = {**body, "_model": model, "_size": size, "_submitted": time.time()}
        self.jobs[task_id] = Job(id=task_id, request=stored, outcome=outcome)
        return web.json_response(
            {"id": task_id, "polling_url": f"{self.base_url}/v1/get_result?id={task_id}"}
        )

    async def _get_result(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        task_id = request.query.get("id")
        if not task_id:
            item = {"type": "missing", "loc": ["query", "id"], "msg": "Field required", "input": None}
            return web.json_response({"detail": [item]}, status=422)
        job = self.jobs.get(task_id)
        if job is None:
            return web.json_response(
                {
                    "id": task_id,
                    "status": "Task not found",
                    "result": None,
                    "progress": None,
                    "details": None,
                    "preview": None,
                }
            )
        job.polls += 1
        return web.json_response(self._answer(job))


def channel_base_url(sim: ImageSim) -> str:
    return sim.base_url


Sim = BFLSim
