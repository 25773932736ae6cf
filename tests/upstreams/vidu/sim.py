"""Simulator of Vidu's enterprise API (``/ent/v2``), for the ``vidu`` adapter.

As Vidu's API reference describes it:

- Auth ``Authorization: Token <key>``; errors are ``{code, reason, message, metadata}`` with the
  HTTP status (401 ``Unauthorized``, 400 ``BadRequest``, 429 ``TooManyRequests``...).
- ``POST /ent/v2/text2video`` ``{model, prompt, duration, aspect_ratio, resolution,
  movement_amplitude, style, bgm, seed}``, ``POST /ent/v2/img2video`` ``{model, images: [one],
  prompt?, ...}`` and ``POST /ent/v2/start-end2video`` ``{model, images: [first, last], ...}`` answer
  ``{task_id, state: "created", model, ...}``; ``aspect_ratio`` and ``style`` belong to text2video
  only. A prompt containing ``forbidden`` is 400 ``TaskPromptPolicyViolation``.
- ``GET /ent/v2/tasks/{id}/creations``: ``created`` / ``queueing`` / ``processing`` for
  ``polls_before_ready`` polls, then ``success`` (``creations[0].url``, an MP4 hosted here) or
  ``failed`` (``err_code`` ``InternalServiceFailure``, or ``CreationPolicyViolation`` when moderated).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON
from tests.upstreams.videosim import FAILED, IN_PROGRESS, MODERATED, VideoSim

# model -> (durations, resolutions)
MODELS: dict[str, tuple[frozenset[int], frozenset[str]]] = {
    "viduq1": (frozenset({5}), frozenset({"1080p"})),
    "vidu2.0": (frozenset({4, 8}), frozenset({"360p", "720p", "1080p"})),
    "vidu1.5": (frozenset({4, 8}), frozenset({"360p", "720p", "1080p"})),
}
RATIOS = frozenset({"16:9", "9:16", "1:1"})
AMPLITUDES = frozenset({"auto", "small", "medium", "large"})
_PROGRESS = ("created", "queueing", "processing")
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    402: "CreditInsufficient",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServiceFailure",
    503: "ServiceUnavailable",
}
# endpoint -> how many images it takes
_IMAGES = {"text2video": 0, "img2video": 1, "start-end2video": 2}


def vidu_error(status: int, message: str, reason: str | None = None) -> web.Response:
    body = {
        "code": status,
        "reason": reason or _REASONS.get(status, "Unknown"),
        "message": message,
        "metadata": {},
    }
    return web.json_response(body, status=status)


class ViduSim(VideoSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/ent/v2/text2video", self._create),
            web.post("/ent/v2/img2video", self._create),
            web.post("/ent/v2/start-end2video", self._create),
            web.get("/ent/v2/tasks/{id}/creations", self._get),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {"code": status, "reason": _REASONS.get(status, "Unknown"), "message": message, "metadata": {}}

    def _refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Token ") or auth[6:].strip() not in self.api_keys:
            return vidu_error(401, "invalid token")
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        endpoint = request.path.rsplit("/", 1)[-1]
        problem = _validate(endpoint, body)
        if problem is not None:
            return vidu_error(400, problem)
        if "forbidden" in str(body.get("prompt", "")).lower():
            return vidu_error(400, "the prompt violates the content policy", "TaskPromptPolicyViolation")
        job = self.new_job({"endpoint": endpoint, **body})
        answer = {k: v for k, v in body.items() if k != "images"}
        return web.json_response(
            {
                "task_id": job.id,
                "state": "created",
                **answer,
                "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            }
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return vidu_error(404, "task not found")
        state = self.advance(job)
        task: JSON = {"id": job.id, "state": "", "err_code": "", "credits": 0, "payload": "", "creations": []}
        if state == IN_PROGRESS:
            task["state"] = _PROGRESS[min(job.polls - 1, len(_PROGRESS) - 1)]
        elif state == FAILED:
            task.update(state="failed", err_code="InternalServiceFailure")
        elif state == MODERATED:
            task.update(state="failed", err_code="CreationPolicyViolation")
        else:
            url = job.outputs[0]
            cover = self.host_image(32, 18, "jpeg")
            task.update(
                state="success",
                credits=20,
                creations=[{"id": f"c{job.id}", "url": url, "cover_url": cover, "watermarked_url": url}],
            )
        return web.json_response(task)


def _validate(endpoint: str, body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    model = body.get("model")
    if model not in MODELS:
        return f"model {model!r} is not supported"
    durations, resolutions = MODELS[model]
    if body.get("duration") is not None and body["duration"] not in durations:
        return f"duration {body['duration']!r} is not supported by {model}"
    if body.get("resolution") is not None and body["resolution"] not in resolutions:
        return f"resolution {body['resolution']!r} is not supported by {model}"
    prompt = body.get("prompt")
    if endpoint == "text2video" and (not isinstance(prompt, str) or not prompt.strip()):
        return "prompt is required"
    if isinstance(prompt, str) and len(prompt) > 1500:
        return "prompt must be at most 1500 characters"
    if body.get("movement_amplitude") is not None and body["movement_amplitude"] not in AMPLITUDES:
        return "movement_amplitude is invalid"
    if body.get("bgm") is not None and not isinstance(body["bgm"], bool):
        return "bgm must be a boolean"
    if endpoint == "text2video":
        if body.get("aspect_ratio") is not None and body["aspect_ratio"] not in RATIOS:
            return "aspect_ratio is invalid"
        if body.get("style") is not None and body["style"] not in ("general", "anime"):
            return "style is invalid"
    else:
        for name in ("aspect_ratio", "style"):
            if name in body:
                return f"{name} is not a parameter of {endpoint}"
    images = body.get("images")
    wanted = _IMAGES[endpoint]
    if wanted == 0:
        if images is not None:
            return "images is not a parameter of text2video"
    elif not isinstance(images, list) or len(images) != wanted:
        return f"{endpoint} takes exactly {wanted} image(s)"
    elif not all(isinstance(i, str) and i.startswith(("http://", "https://", "data:image/")) for i in images):
        return "images must be URLs or data:image base64 strings"
    return None


def channel_base_url(sim: ViduSim) -> str:
    return sim.base_url


Sim = ViduSim
