"""Simulator of Luma's Dream Machine video API (Ray), for the ``luma_video`` adapter.

As Luma's API reference describes it:

- ``POST /dream-machine/v1/generations`` (also ``/generations/video``) ``{prompt, model,
  aspect_ratio, resolution, duration, loop, keyframes: {frame0, frame1: {type: "image", url}}}``
  answers 201 with a generation ``{id, generation_type: "video", state: "queued", failure_reason,
  created_at, assets, model, request}``.
- ``GET /dream-machine/v1/generations/{id}``: ``queued`` then ``dreaming`` for ``polls_before_ready``
  polls, then ``completed`` (``assets.video``, an MP4 hosted here, and ``assets.image``) or
  ``failed`` (``failure_reason``).
- Auth ``Authorization: Bearer <key>``; errors ``{"detail": "..."}``: 401 for a bad key, 400 for a
  bad model / ratio / resolution / duration / keyframe or a prompt the moderation refuses (here: one
  containing ``forbidden``), 422 ``{"detail": [{type, loc, msg}]}`` for a missing or mistyped field,
  404 for an unknown generation.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, Job
from tests.upstreams.videosim import FAILED, MODERATED, SUCCEEDED, VideoSim

MODELS = frozenset({"ray-2", "ray-flash-2", "ray-1-6"})
ASPECT_RATIOS = frozenset({"1:1", "16:9", "9:16", "4:3", "3:4", "21:9", "9:21"})
RESOLUTIONS = frozenset({"540p", "720p", "1080p", "4k"})
DURATIONS = frozenset({"5s", "9s"})
MODERATION_REASON = "Prompt not allowed because advanced content moderation flagged it"
FAILURE_REASON = "Internal server error: the generation could not be completed"


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class LumaVideoSim(VideoSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/dream-machine/v1/generations", self._create),
            web.post("/dream-machine/v1/generations/video", self._create),
            web.get("/dream-machine/v1/generations/{id}", self._get),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {"detail": message}

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[7:].strip() in self.api_keys

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        if not self._authorized(request):
            return web.json_response({"detail": "Invalid API key"}, status=401)
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            detail = [{"type": "missing", "loc": ["body", "prompt"], "msg": "Field required"}]
            return web.json_response({"detail": detail}, status=422)
        problem = _validate(body)
        if problem is not None:
            return web.json_response({"detail": problem}, status=400)
        if "forbidden" in body["prompt"].lower():
            return web.json_response({"detail": MODERATION_REASON}, status=400)
        job = self.new_job(body, job_id=str(uuid.uuid4()))
        return web.json_response(self._generation(job, "queued"), status=201)

    async def _get(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        if not self._authorized(request):
            return web.json_response({"detail": "Invalid API key"}, status=401)
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"detail": "Generation not found"}, status=404)
        state = self.advance(job)
        if state == SUCCEEDED:
            return web.json_response(self._generation(job, "completed"))
        if state in (FAILED, MODERATED):
            return web.json_response(self._generation(job, "failed"))
        return web.json_response(self._generation(job, "queued" if job.polls == 1 else "dreaming"))

    def _generation(self, job: Job, state: str) -> JSON:
        assets = None
        reason = None
        if state == "completed":
            assets = {"video": job.outputs[0], "image": self.host_image(32, 18, "jpeg")}
        elif state == "failed":
            reason = MODERATION_REASON if job.outcome == MODERATED else FAILURE_REASON
        return {
            "id": job.id,
            "generation_type": "video",
            "state": state,
            "failure_reason": reason,
            "created_at": _now(),
            "assets": assets,
            "model": job.request.get("model"),
            "request": job.request,
        }


def _validate(body: dict[str, Any]) -> str | None:
    if body.get("model", "ray-2") not in MODELS:
        return f"Invalid model: {body.get('model')}"
    if "aspect_ratio" in body and body["aspect_ratio"] not in ASPECT_RATIOS:
        return f"Invalid aspect ratio: {body['aspect_ratio']}"
    if "resolution" in body and body["resolution"] not in RESOLUTIONS:
        return f"Invalid resolution: {body['resolution']}"
    if "duration" in body and body["duration"] not in DURATIONS:
        return f"Invalid duration: {body['duration']}"
    if "loop" in body and not isinstance(body["loop"], bool):
        return "loop must be a boolean"
    keyframes = body.get("keyframes")
    if keyframes is not None:
        if not isinstance(keyframes, dict) or set(keyframes) - {"frame0", "frame1"}:
            return "keyframes may only have frame0 and frame1"
        for frame in keyframes.values():
            url = frame.get("url") if isinstance(frame, dict) else None
            if not isinstance(frame, dict) or frame.get("type") != "image" or not isinstance(url, str):
                return "a keyframe must be {type: image, url}"
            if not url.startswith(("http://", "https://", "data:image/")):
                return "a keyframe url must be an image URL"
    return None


def channel_base_url(sim: LumaVideoSim) -> str:
    return sim.base_url


Sim = LumaVideoSim
