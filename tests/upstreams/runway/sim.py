"""Simulator of Runway's API (``api.dev.runwayml.com``), for the ``runway`` adapter.

As Runway's API reference describes it:

- Every call needs ``Authorization: Bearer <key>`` (401 ``{"error": ...}`` otherwise) and
  ``X-Runway-Version: 2024-11-06`` (400 otherwise).
- ``POST /v1/image_to_video`` ``{model, promptImage, promptText?, ratio, duration, seed?}``
  (``promptImage`` an http(s)/data URI, or ``[{uri, position: first|last}]``), ``POST /v1/text_to_video``
  ``{model, promptText, ratio, duration}``, ``POST /v1/video_to_video`` ``{model, videoUri, promptText,
  ratio}`` answer ``{id}``; a body that fails validation is 400 ``{"error": "Validation of body
  failed", "issues": [{message, path}]}``.
- ``GET /v1/tasks/{id}``: ``PENDING`` / ``THROTTLED`` / ``RUNNING`` for ``polls_before_ready`` polls,
  then ``SUCCEEDED`` (``output: [url]``, an MP4 hosted here) or ``FAILED`` (``failure``,
  ``failureCode``: ``INTERNAL.BAD_OUTPUT.CODE01``, or ``SAFETY.INPUT.TEXT`` when moderated). Unknown
  tasks are 404.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON
from tests.upstreams.videosim import FAILED, IN_PROGRESS, MODERATED, SUCCEEDED, VideoSim

API_VERSION = "2024-11-06"
# model -> (endpoints it serves, ratios, durations)
MODELS: dict[str, tuple[frozenset[str], frozenset[str], frozenset[int]]] = {
    "gen4_turbo": (
        frozenset({"image_to_video"}),
        frozenset({"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"}),
        frozenset({5, 10}),
    ),
    "gen3a_turbo": (frozenset({"image_to_video"}), frozenset({"1280:768", "768:1280"}), frozenset({5, 10})),
    "veo3": (
        frozenset({"image_to_video", "text_to_video"}),
        frozenset({"1280:720", "720:1280"}),
        frozenset({8}),
    ),
    "gen4_aleph": (
        frozenset({"video_to_video"}),
        frozenset({"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"}),
        frozenset(),
    ),
}
_PROGRESS = ("PENDING", "THROTTLED", "RUNNING")


def _is_uri(value: Any, *, video: bool = False) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith(("http://", "https://")):
        return True
    return not video and value.startswith("data:image/")


class RunwaySim(VideoSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/image_to_video", self._create),
            web.post("/v1/text_to_video", self._create),
            web.post("/v1/video_to_video", self._create),
            web.get("/v1/tasks/{id}", self._get),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {"error": message}

    def _refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:].strip() not in self.api_keys:
            return web.json_response({"error": "Invalid API key"}, status=401)
        if request.headers.get("X-Runway-Version") != API_VERSION:
            return web.json_response(
                {"error": f"Invalid API version. Set the X-Runway-Version header to {API_VERSION}."},
                status=400,
            )
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        refused = self._refusal(request)
        if refused is not None:
            return refused
        endpoint = request.path.rsplit("/", 1)[-1]
        issues = _validate(endpoint, body)
        if issues:
            return web.json_response({"error": "Validation of body failed", "issues": issues}, status=400)
        job = self.new_job(body, job_id=str(uuid.uuid4()))
        if "forbidden" in str(body.get("promptText", "")).lower():
            job.outcome = MODERATED
        return web.json_response({"id": job.id})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure()
        if injected is not None:
            return injected
        refused = self._refusal(request)
        if refused is not None:
            return refused
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.json_response({"error": "Task not found"}, status=404)
        state = self.advance(job)
        task: JSON = {"id": job.id, "createdAt": datetime.now(UTC).isoformat().replace("+00:00", "Z")}
        if state == IN_PROGRESS:
            task["status"] = _PROGRESS[(job.polls - 1) % len(_PROGRESS)]
            if task["status"] == "RUNNING":
                task["progress"] = 0.5
        elif state == SUCCEEDED:
            task.update(status="SUCCEEDED", output=list(job.outputs))
        elif state == FAILED:
            task.update(
                status="FAILED",
                failure="An unexpected error occurred.",
                failureCode="INTERNAL.BAD_OUTPUT.CODE01",
            )
        else:
            task.update(
                status="FAILED",
                failure="The text prompt did not pass moderation.",
                failureCode="SAFETY.INPUT.TEXT",
            )
        return web.json_response(task)


def _validate(endpoint: str, body: Any) -> list[JSON]:
    """Runway's validation issues for the body, or an empty list."""
    if not isinstance(body, dict):
        return [{"message": "Expected object", "path": []}]
    issues: list[JSON] = []
    model = body.get("model")
    if model not in MODELS:
        return [{"message": f"Invalid enum value '{model}'", "path": ["model"]}]
    endpoints, ratios, durations = MODELS[model]
    if endpoint not in endpoints:
        issues.append({"message": f"{model} is not available on /v1/{endpoint}", "path": ["model"]})
    if body.get("ratio") not in ratios:
        issues.append({"message": f"Invalid enum value '{body.get('ratio')}'", "path": ["ratio"]})
    if durations and body.get("duration") not in durations:
        issues.append({"message": "Invalid duration", "path": ["duration"]})
    text = body.get("promptText")
    if text is not None and (not isinstance(text, str) or len(text) > 1000):
        issues.append(
            {"message": "promptText must be a string of at most 1000 characters", "path": ["promptText"]}
        )
    if endpoint in ("text_to_video", "video_to_video") and not text:
        issues.append({"message": "Required", "path": ["promptText"]})
    if endpoint == "image_to_video":
        image = body.get("promptImage")
        frames = image if isinstance(image, list) else [{"uri": image, "position": "first"}]
        if not frames or not all(
            isinstance(f, dict) and _is_uri(f.get("uri")) and f.get("position") in ("first", "last")
            for f in frames
        ):
            issues.append(
                {"message": "promptImage must be a URI or a list of {uri, position}", "path": ["promptImage"]}
            )
    if endpoint == "video_to_video" and not _is_uri(body.get("videoUri"), video=True):
        issues.append({"message": "videoUri must be an https URL", "path": ["videoUri"]})
    return issues


def channel_base_url(sim: RunwaySim) -> str:
    return sim.base_url


Sim = RunwaySim
