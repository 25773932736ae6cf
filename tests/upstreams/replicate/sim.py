"""In-process simulator of Replicate's predictions API, for the ``replicate`` adapter.

Wire format as in Replicate's HTTP API reference:

- ``POST /v1/models/{owner}/{name}/predictions`` ``{"input": {...}}`` and
  ``POST /v1/predictions`` ``{"version", "input"}`` create a prediction (201, status ``starting``);
  a ``Prefer: wait[=N]`` header answers the finished prediction instead (a fast model).
- ``GET /v1/predictions/{id}`` answers it: ``processing`` for ``polls_before_ready`` polls, then
  ``succeeded`` (``output``), ``failed`` (``error``) or ``canceled``.
- ``POST /v1/predictions/{id}/cancel`` cancels a running prediction.
- Auth ``Authorization: Bearer <token>`` (the older ``Token <token>`` too); errors are
  problem+json ``{"title", "detail", "status"}`` (422 adds ``invalid_fields``).

Output shapes: a list of URLs; one URL string for the single-output models (names containing
``flux-1.1-pro``, as on Replicate); with ``output_json_string`` set, a JSON-encoded string of the
list, as 302.AI's own V1 answer shows. Models whose name ends in ``-i2i`` require ``input.image``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from PIL import Image

from tests.upstreams.imaging import JSON, Handler, ImageSim, ImageSimConfig, Job, Recorded

_RECORD = web.RequestKey("replicate_sim_recorded", Recorded)
ASPECT_RATIOS = frozenset({"1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"})
OUTPUT_FORMATS = frozenset({"webp", "jpg", "png"})
SINGLE_OUTPUT_MARK = "flux-1.1-pro"
NSFW_ERROR = "NSFW content detected. Try running it again, or try a different prompt."
MODEL_ERROR = "Prediction failed: CUDA error: an illegal memory access was encountered"
_ID_CHARS = string.ascii_lowercase + string.digits


def problem(status: int, title: str, detail: str, **extra: Any) -> web.Response:
    return web.json_response(
        {"title": title, "detail": detail, "status": status, **extra},
        status=status,
        content_type="application/problem+json",
    )


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _image_size(value: str) -> tuple[int, int] | None:
    """Size of a data-URL image, None when it is not one (an http URL is accepted unread)."""
    if not value.startswith("data:"):
        return None
    try:
        data = base64.b64decode(value.split(",", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as img:
            return img.size
    except (IndexError, binascii.Error, ValueError, OSError):
        raise ValueError("image: could not read the data URL as an image") from None


class ReplicateSim(ImageSim):
    def __init__(
        self,
        api_keys: set[str] | None = None,
        config: ImageSimConfig | None = None,
        *,
        models: set[str] | None = None,
    ) -> None:
        super().__init__(api_keys, config)
        self.models = models  # None: every owner/name exists
        self.output_json_string = False

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/models/{owner}/{name}/predictions", self._create_for_model),
            web.post("/v1/predictions", self._create_for_version),
            web.get("/v1/predictions/{id}", self._get),
            web.post("/v1/predictions/{id}/cancel", self._cancel),
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
        return {"title": message, "detail": message, "status": status}

    # --- helpers ------------------------------------------------------------------------------

    def _auth(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme not in ("Bearer", "Token") or token.strip() not in self.api_keys:
            return problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        return None

    def _validate(self, model: str, body: Any) -> tuple[JSON, tuple[int, int]]:
        """The input, and the size of the images it makes; ValueError (→ 422) when invalid."""
        if not isinstance(body, dict) or not isinstance(body.get("input"), dict):
            raise ValueError("input: Invalid type. Expected: object")
        data: JSON = body["input"]
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("input: prompt is required")
        for key in ("width", "height"):
            value = data.get(key)
            if value is not None and (not isinstance(value, int) or not 64 <= value <= 2048):
                raise ValueError(f"input.{key}: Must be an integer between 64 and 2048")
        count = data.get("num_outputs", 1)
        if not isinstance(count, int) or not 1 <= count <= 4:
            raise ValueError("input.num_outputs: Must be between 1 and 4")
        if data.get("output_format", "png") not in OUTPUT_FORMATS:
            raise ValueError("input.output_format: must be one of the following: webp, jpg, png")
        ratio = data.get("aspect_ratio")
        if ratio is not None and ratio not in ASPECT_RATIOS:
            raise ValueError(f"input.aspect_ratio: {ratio} is not a valid choice")
        seed = data.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ValueError("input.seed: Invalid type. Expected: integer")
        image = data.get("image")
        if image is not None and not isinstance(image, str):
            raise ValueError("input.image: Invalid type. Expected: string")
        if model.endswith("-i2i") and not image:
            raise ValueError("input: image is required")
        image_size = _image_size(image) if image else None
        if image_size is not None:
            size = image_size
        elif isinstance(ratio, str):
            w, h = (int(x) for x in ratio.split(":"))
            size = (32 * w, 32 * h)
        elif "width" in data or "height" in data:
            size = (int(data.get("width", 1024)), int(data.get("height", 1024)))
        else:
            size = self.config.default_size
        return data, size

    def _prediction(self, job: Job) -> JSON:
        request: JSON = job.request
        model: str = request["model"]
        prediction: JSON = {
            "id": job.id,
            "model": model,
            "version": request["version"],
            "input": request["input"],
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": request["created_at"],
            "started_at": None,
            "completed_at": None,
            "urls": {
                "get": f"{self.base_url}/v1/predictions/{job.id}",
                "cancel": f"{self.base_url}/v1/predictions/{job.id}/cancel",
            },
            "metrics": {},
        }
        if job.polls == 0 and job.outcome != "canceled":
            return prediction
        prediction["started_at"] = request["created_at"]
        if job.polls <= self.config.polls_before_ready and job.outcome != "canceled":
            prediction["status"] = "processing"
            prediction["logs"] = "".join(
                f"step {i}/{self.config.polls_before_ready}\n" for i in range(job.polls)
            )
            return prediction
        prediction["completed_at"] = request.get("completed_at") or _now()
        request["completed_at"] = prediction["completed_at"]
        if job.outcome == "canceled":
            prediction["status"] = "canceled"
            return prediction
        if job.outcome in ("failed", "moderated"):
            prediction["status"] = "failed"
            prediction["error"] = NSFW_ERROR if job.outcome == "moderated" else MODEL_ERROR
            return prediction
        data: JSON = request["input"]
        if not job.outputs:
            width, height = request["size"]
            fmt = str(data.get("output_format", "png")).replace("jpg", "jpeg")
            count = 1 if SINGLE_OUTPUT_MARK in model else int(data.get("num_outputs", 1))
            job.outputs.extend(self.host_image(width, height, fmt) for _ in range(count))
        output: Any = job.outputs[0] if SINGLE_OUTPUT_MARK in model else list(job.outputs)
        if self.output_json_string:
            output = json.dumps(job.outputs)
        prediction.update(
            status="succeeded",
            output=output,
            logs="done\n",
            metrics={"predict_time": 1.25, "total_time": 1.5},
        )
        return prediction

    async def _create(self, request: web.Request, model: str, version: str, body: Any) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        if self.models is not None and model not in self.models:
            return problem(404, "Not found", "The requested resource could not be found.")
        try:
            data, size = self._validate(model, body)
        except ValueError as exc:
            detail = f"- {exc}\n"
            field, _, description = str(exc).partition(": ")
            invalid = [{"type": "invalid", "field": field, "description": description}]
            return problem(422, "Input validation failed", detail, invalid_fields=invalid)
        job_id = "".join(secrets.choice(_ID_CHARS) for _ in range(26))
        stored: JSON = {"model": model, "version": version, "input": data, "size": size, "created_at": _now()}
        job = Job(id=job_id, request=stored, outcome=self.job_outcome())
        self.jobs[job_id] = job
        if "wait" in request.headers.get("Prefer", ""):
            job.polls = self.config.polls_before_ready + 1  # a fast model: done within the wait
        return web.json_response(self._prediction(job), status=201)

    # --- routes -------------------------------------------------------------------------------

    async def _create_for_model(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model = f"{request.match_info['owner']}/{request.match_info['name']}"
        return await self._create(request, model, "", body)

    async def _create_for_version(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        version = body.get("version") if isinstance(body, dict) else None
        if not isinstance(version, str) or not version:
            denied = self._auth(request)
            if denied is not None:
                return denied
            return problem(422, "Input validation failed", "- version: version is required\n")
        return await self._create(request, "unknown/versioned-model", version, body)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        job.polls += 1
        return web.json_response(self._prediction(job))

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return problem(404, "Not found", "The requested resource could not be found.")
        if job.polls <= self.config.polls_before_ready:
            job.outcome = "canceled"
        return web.json_response(self._prediction(job))


def channel_base_url(sim: ImageSim) -> str:
    return sim.base_url


Sim = ReplicateSim
