"""In-process simulator of Luma's Dream Machine image API (Photon), for the ``luma`` adapter.

Wire format as in Luma's API reference:

- ``POST /dream-machine/v1/generations/image`` ``{prompt, model, aspect_ratio, image_ref,
  style_ref, character_ref, modify_image_ref}`` answers 201 with a generation object
  ``{id, generation_type: "image", state: "queued", failure_reason, created_at, assets, model,
  request}``.
- ``GET /dream-machine/v1/generations/{id}`` answers it ``dreaming`` for ``polls_before_ready``
  polls, then ``completed`` (``assets.image``, a JPEG) or ``failed`` (``failure_reason``).
- Auth ``Authorization: Bearer <key>``; errors ``{"detail": "..."}``: 401 for a bad key, 400 for a
  bad model / aspect ratio / reference, 422 ``{"detail": [{type, loc, msg}]}`` for a missing or
  mistyped field, 404 for an unknown generation.

Reference URLs may be http(s) or data URLs (the real API fetches http(s) URLs).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, Handler, ImageSim, Job, Recorded

_RECORD = web.RequestKey("luma_sim_recorded", Recorded)
MODELS = frozenset({"photon-1", "photon-flash-1"})
ASPECT_RATIOS = frozenset({"1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"})
MODERATION_REASON = "Prompt not allowed because advanced content moderation flagged it"
FAILURE_REASON = "Internal server error: the generation could not be completed"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _detail(status: int, message: str) -> web.Response:
    return web.json_response({"detail": message}, status=status)


class _BadRequest(Exception):
    pass


def _check_url(field: str, url: Any) -> None:
    if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
        raise _BadRequest(f"{field}: a reference must be an http(s) URL of an image")


def _check_weighted(field: str, ref: Any) -> None:
    if not isinstance(ref, dict):
        raise _BadRequest(f"{field}: each reference must be an object with url and weight")
    _check_url(field, ref.get("url"))
    weight = ref.get("weight", 1.0)
    if not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
        raise _BadRequest(f"{field}: weight must be between 0 and 1")


class LumaSim(ImageSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/dream-machine/v1/generations/image", self._create),
            web.get("/dream-machine/v1/generations/{id}", self._get),
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

    def _auth(self, request: web.Request) -> web.Response | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token.strip() not in self.api_keys:
            return _detail(401, "Invalid API key")
        return None

    def _validate(self, body: Any) -> None:
        """Raises _BadRequest (→ 400) for a bad model, aspect ratio or reference."""
        for field in ("image_ref", "style_ref"):
            refs = body.get(field)
            if refs is None:
                continue
            if not isinstance(refs, list) or not 1 <= len(refs) <= 4:
                raise _BadRequest(f"{field}: between 1 and 4 references are allowed")
            for ref in refs:
                _check_weighted(field, ref)
        if body.get("modify_image_ref") is not None:
            _check_weighted("modify_image_ref", body["modify_image_ref"])
        character = body.get("character_ref")
        if character is not None:
            identity = character.get("identity0") if isinstance(character, dict) else None
            images = identity.get("images") if isinstance(identity, dict) else None
            if not isinstance(images, list) or not 1 <= len(images) <= 4:
                raise _BadRequest("character_ref: identity0.images must hold 1 to 4 URLs")
            for url in images:
                _check_url("character_ref", url)
        if body["model"] not in MODELS:
            raise _BadRequest(f"Invalid model: {body['model']}")
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            raise _BadRequest(f"Invalid aspect ratio: {body.get('aspect_ratio')}")

    def _generation(self, job: Job) -> JSON:
        request: JSON = job.request
        generation: JSON = {
            "id": job.id,
            "generation_type": "image",
            "state": "queued",
            "failure_reason": None,
            "created_at": request["created_at"],
            "assets": None,
            "model": request["model"],
            "request": {
                **{k: v for k, v in request.items() if k != "created_at"},
                "generation_type": "image",
            },
        }
        if job.polls == 0:
            return generation
        if job.polls <= self.config.polls_before_ready:
            return {**generation, "state": "dreaming"}
        if job.outcome == "moderated":
            return {**generation, "state": "failed", "failure_reason": MODERATION_REASON}
        if job.outcome == "failed":
            return {**generation, "state": "failed", "failure_reason": FAILURE_REASON}
        if not job.outputs:
            w, h = (int(x) for x in str(request.get("aspect_ratio", "16:9")).split(":"))
            job.outputs.append(self.host_image(32 * w, 32 * h, "jpeg"))
        return {**generation, "state": "completed", "assets": {"image": job.outputs[0]}}

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        if not isinstance(body, dict):
            item = {"type": "dict_type", "loc": ["body"], "msg": "Input should be a valid dictionary"}
            return web.json_response({"detail": [item]}, status=422)
        for field in ("prompt", "model"):
            if not isinstance(body.get(field), str) or not body[field].strip():
                item = {"type": "missing", "loc": ["body", field], "msg": "Field required"}
                return web.json_response({"detail": [item]}, status=422)
        try:
            self._validate(body)
        except _BadRequest as exc:
            return _detail(400, str(exc))
        job_id = str(uuid.uuid4())
        stored = {**body, "created_at": _now()}
        job = Job(id=job_id, request=stored, outcome=self.job_outcome())
        self.jobs[job_id] = job
        return web.json_response(self._generation(job), status=201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        denied = self._auth(request)
        if denied is not None:
            return denied
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return _detail(404, "Generation not found")
        job.polls += 1
        return web.json_response(self._generation(job))


def channel_base_url(sim: ImageSim) -> str:
    return sim.base_url


Sim = LumaSim
