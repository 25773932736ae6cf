"""Simulator of Volcengine Ark's content generation tasks (Seedance), for the ``seedance`` adapter.

As Ark's API reference describes it:

- Auth ``Authorization: Bearer <Ark API key>``; errors ``{"error": {code, message, param, type}}``
  with the HTTP status (401 ``AuthenticationError``, 400 ``InvalidParameter``, 400
  ``InputTextSensitiveContentDetected`` for a prompt the content check refuses (here: one containing
  ``forbidden``), 429 ``RateLimitExceeded.EndpointRPMExceeded``, 404 ``ResourceNotFound``...).
- ``POST /api/v3/contents/generations/tasks`` ``{model, content: [{type: "text", text}, {type:
  "image_url", image_url: {url}, role?}]}`` answers ``{id}``. Settings are text commands in the prompt
  (``--resolution``/``--rs``, ``--ratio``/``--rt``, ``--duration``/``--dur``, ``--camerafixed``/``--cf``,
  ``--seed``, ``--framespersecond``/``--fps``, ``--watermark``/``--wm``), checked here; Seedance 1.0
  Pro takes a first frame only.
- ``GET /api/v3/contents/generations/tasks/{id}``: ``queued`` then ``running`` for
  ``polls_before_ready`` polls, then ``succeeded`` (``content.video_url``, an MP4 hosted here, and
  ``usage``) or ``failed`` (``error``: ``InternalServiceError``, or
  ``OutputVideoSensitiveContentDetected`` when moderated).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON, Job
from tests.upstreams.videosim import FAILED, IN_PROGRESS, MODERATED, VideoSim

MODELS = {"doubao-seedance-1-0-pro-250528": "pro", "doubao-seedance-1-0-lite-i2v-250428": "lite"}
RESOLUTIONS = frozenset({"480p", "720p", "1080p"})
RATIOS = frozenset({"21:9", "16:9", "4:3", "1:1", "3:4", "9:16", "9:21", "keep_ratio", "adaptive"})
_ALIASES = {
    "--rs": "--resolution",
    "--rt": "--ratio",
    "--dur": "--duration",
    "--cf": "--camerafixed",
    "--fps": "--framespersecond",
    "--wm": "--watermark",
}
_ERRORS = {
    400: ("InvalidParameter", "BadRequest"),
    401: ("AuthenticationError", "Unauthorized"),
    403: ("AccountOverdueError", "Forbidden"),
    404: ("ResourceNotFound", "NotFound"),
    429: ("RateLimitExceeded.EndpointRPMExceeded", "TooManyRequests"),
    500: ("InternalServiceError", "InternalServerError"),
}


def ark_error(
    status: int, code: str, message: str, type_: str = "BadRequest", param: str = ""
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message, "param": param, "type": type_}}, status=status
    )


def commands(text: str) -> tuple[str, dict[str, str]]:
    """The prompt without its trailing text commands, and the commands (long names)."""
    words = text.split()
    found: dict[str, str] = {}
    kept: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("--") and i + 1 < len(words):
            found[_ALIASES.get(word, word)] = words[i + 1]
            i += 2
            continue
        kept.append(word)
        i += 1
    return " ".join(kept), found


class SeedanceSim(VideoSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v3/contents/generations/tasks", self._create),
            web.get("/api/v3/contents/generations/tasks/{id}", self._get),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        code, type_ = _ERRORS.get(status, ("InternalServiceError", "InternalServerError"))
        return {"error": {"code": code, "message": message, "param": "", "type": type_}}

    def _refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:].strip() not in self.api_keys:
            return ark_error(401, "AuthenticationError", "the API key is missing or invalid", "Unauthorized")
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        problem, settings = _validate(body)
        if problem is not None:
            return ark_error(400, "InvalidParameter", problem[1], param=problem[0])
        if "forbidden" in settings["prompt"].lower():
            return ark_error(
                400, "InputTextSensitiveContentDetected", "the input text may contain sensitive content"
            )
        job = self.new_job(
            {**body, "settings": settings}, job_id=f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{self.new_id()}"
        )
        return web.json_response({"id": job.id})

    async def _get(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return ark_error(404, "ResourceNotFound", "the task does not exist", "NotFound")
        return web.json_response(self._task(job))

    def _task(self, job: Job) -> JSON:
        state = self.advance(job)
        settings = job.request["settings"]
        now = int(time.time())
        task: JSON = {"id": job.id, "model": job.request["model"], "created_at": now, "updated_at": now}
        if state == IN_PROGRESS:
            task["status"] = "queued" if job.polls == 1 else "running"
        elif state == FAILED:
            task.update(
                status="failed", error={"code": "InternalServiceError", "message": "the generation failed"}
            )
        elif state == MODERATED:
            error = {
                "code": "OutputVideoSensitiveContentDetected",
                "message": "the output video may be sensitive",
            }
            task.update(status="failed", error=error)
        else:
            task.update(
                status="succeeded",
                content={"video_url": job.outputs[0]},
                usage={"completion_tokens": 246840, "total_tokens": 246840},
                seed=int(settings.get("--seed", 58944)),
                resolution=settings.get("--resolution", "1080p"),
                ratio=settings.get("--ratio", "16:9"),
                duration=int(settings.get("--duration", 5)),
                framespersecond=24,
            )
        return task


def _validate(body: Any) -> tuple[tuple[str, str] | None, dict[str, Any]]:
    """((param, problem) or None, the parsed settings with the bare prompt)."""
    settings: dict[str, Any] = {"prompt": ""}
    if not isinstance(body, dict) or body.get("model") not in MODELS:
        return (
            "model",
            f"the model {body.get('model') if isinstance(body, dict) else None!r} does not exist",
        ), settings
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return ("content", "content must be a non-empty list"), settings
    texts = [c for c in content if isinstance(c, dict) and c.get("type") == "text"]
    images = [c for c in content if isinstance(c, dict) and c.get("type") == "image_url"]
    if len(texts) + len(images) != len(content) or len(texts) > 1:
        return ("content", "content items are one text and image_url items"), settings
    if texts:
        prompt, found = commands(str(texts[0].get("text", "")))
        settings.update(found, prompt=prompt)
    if not texts and not images:
        return ("content", "a text or an image is required"), settings
    for image in images:
        url = (image.get("image_url") or {}).get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
            return ("image_url.url", "the image must be a URL or a data:image base64 string"), settings
        if image.get("role", "first_frame") not in ("first_frame", "last_frame"):
            return ("role", "role must be first_frame or last_frame"), settings
    if len(images) > 1 and MODELS[body["model"]] == "pro":
        return ("content", "this model takes a first frame only"), settings
    checks: dict[str, Callable[[str], bool]] = {
        "--resolution": lambda v: v in RESOLUTIONS,
        "--ratio": lambda v: v in RATIOS,
        "--duration": lambda v: v in ("5", "10"),
        "--camerafixed": lambda v: v in ("true", "false"),
        "--watermark": lambda v: v in ("true", "false"),
        "--seed": lambda v: v.lstrip("-").isdigit(),
        "--framespersecond": lambda v: v == "24",
    }
    for command, ok in checks.items():
        if command in settings and not ok(settings[command]):
            return (command, f"{command} {settings[command]} is not supported"), settings
    if not images and settings.get("--ratio") == "adaptive":
        return ("--ratio", "adaptive needs a first frame"), settings
    return None, settings


def channel_base_url(sim: SeedanceSim) -> str:
    return sim.base_url


Sim = SeedanceSim
