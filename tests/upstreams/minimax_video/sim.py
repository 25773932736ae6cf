"""Simulator of MiniMax's video generation API (Hailuo), for the ``minimax_video`` adapter.

As MiniMax's API reference describes it, with errors inside ``base_resp`` of HTTP 200 answers
(1004 not authorized, 2049 invalid api key, 2013 invalid params, 1026 sensitive input, 1027
sensitive output, 1000 unknown error):

- ``POST /v1/video_generation`` ``{model, prompt, duration, resolution, first_frame_image?,
  last_frame_image?, prompt_optimizer?}`` -> ``{task_id, base_resp}``. A prompt containing
  ``forbidden`` is refused with 1026.
- ``GET /v1/query/video_generation?task_id=`` -> ``{task_id, status, file_id?, base_resp}``:
  ``Preparing`` / ``Queueing`` / ``Processing`` for ``polls_before_ready`` polls, then ``Success``
  with a ``file_id`` or ``Fail`` (``base_resp`` 1027 when the result was moderated).
- ``GET /v1/files/retrieve?file_id=`` -> ``{file: {file_id, bytes, filename, purpose, download_url},
  base_resp}``; the download URL serves an MP4 hosted here.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON
from tests.upstreams.videosim import FAILED, IN_PROGRESS, MODERATED, VideoSim

MODELS = frozenset({"MiniMax-Hailuo-02", "T2V-01-Director", "I2V-01-Director", "T2V-01", "I2V-01"})
RESOLUTIONS = frozenset({"512P", "768P", "1080P"})
_PROGRESS = ("Preparing", "Queueing", "Processing")
# HTTP status of an injected failure -> the status_code its body carries
_INJECTED = {400: 2013, 401: 1004, 402: 1008, 429: 1002, 500: 1000, 503: 1013}


def minimax_body(code: int, message: str, **fields: Any) -> JSON:
    return {**fields, "base_resp": {"status_code": code, "status_msg": message}}


class MinimaxVideoSim(VideoSim):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.file_ids: dict[str, str] = {}  # file_id -> hosted URL

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/video_generation", self._create),
            web.get("/v1/query/video_generation", self._query),
            web.get("/v1/files/retrieve", self._file),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return minimax_body(_INJECTED.get(status, 1000), message)

    def _refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return web.json_response(minimax_body(1004, "login fail: Please carry the API secret key"))
        if auth[7:].strip() not in self.api_keys:
            return web.json_response(minimax_body(2049, "invalid api key"))
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        problem = _validate(body)
        if problem is not None:
            return web.json_response(minimax_body(2013, f"invalid params, {problem}"))
        if "forbidden" in body["prompt"].lower():
            return web.json_response(minimax_body(1026, "input new_sensitive"))
        job = self.new_job(body)
        return web.json_response(minimax_body(0, "success", task_id=job.id))

    async def _query(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        job = self.jobs.get(request.query.get("task_id", ""))
        if job is None:
            return web.json_response(minimax_body(2013, "invalid params, task_id not found"))
        state = self.advance(job)
        if state == IN_PROGRESS:
            status = _PROGRESS[min(job.polls - 1, len(_PROGRESS) - 1)]
            return web.json_response(minimax_body(0, "success", task_id=job.id, status=status, file_id=""))
        if state == FAILED:
            return web.json_response(minimax_body(0, "success", task_id=job.id, status="Fail", file_id=""))
        if state == MODERATED:
            return web.json_response(
                minimax_body(1027, "output new_sensitive", task_id=job.id, status="Fail", file_id="")
            )
        file_id = f"{abs(hash(job.id)) % 10**12:012d}"
        self.file_ids[file_id] = job.outputs[0]
        return web.json_response(
            minimax_body(
                0,
                "success",
                task_id=job.id,
                status="Success",
                file_id=file_id,
                video_width=1366,
                video_height=768,
            )
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        file_id = request.query.get("file_id", "")
        url = self.file_ids.get(file_id)
        if url is None:
            return web.json_response(minimax_body(2013, "invalid params, file not found"))
        name = url.rsplit("/", 1)[-1]
        file = {
            "file_id": file_id,
            "bytes": len(self.files[name][0]),
            "created_at": int(time.time()),
            "filename": "output.mp4",
            "purpose": "video_generation",
            "download_url": url,
        }
        return web.json_response(minimax_body(0, "success", file=file))


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body is not a json object"
    if body.get("model") not in MODELS:
        return f"model {body.get('model')!r} is not supported"
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip() or len(prompt) > 2000:
        return "prompt is required and at most 2000 characters"
    duration = body.get("duration", 6)
    if duration not in (6, 10):
        return "duration must be 6 or 10"
    resolution = body.get("resolution", "768P")
    if resolution not in RESOLUTIONS:
        return f"resolution {resolution!r} is not supported"
    if resolution == "1080P" and duration != 6:
        return "1080P supports 6 seconds only"
    for name in ("first_frame_image", "last_frame_image"):
        value = body.get(name)
        if value is not None and (
            not isinstance(value, str) or not value.startswith(("http", "data:image/"))
        ):
            return f"{name} must be a URL or a base64 data URL"
    if resolution == "512P" and "first_frame_image" not in body:
        return "512P needs a first_frame_image"
    if "prompt_optimizer" in body and not isinstance(body["prompt_optimizer"], bool):
        return "prompt_optimizer must be a boolean"
    return None


def channel_base_url(sim: MinimaxVideoSim) -> str:
    return sim.base_url


Sim = MinimaxVideoSim
