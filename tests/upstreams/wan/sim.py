"""Simulator of DashScope's asynchronous video synthesis (Wan), for the ``wan`` adapter.

As DashScope's API reference describes it:

- Auth ``Authorization: Bearer <key>``; errors ``{code, message, request_id}`` with the HTTP status
  (401 ``InvalidApiKey``, 400 ``InvalidParameter``, 400 ``DataInspectionFailed`` for an input the
  content check refuses (here: a prompt containing ``forbidden``), 429 ``Throttling.RateQuota``...).
- ``POST /api/v1/services/aigc/video-generation/video-synthesis`` needs ``X-DashScope-Async: enable``
  (403 ``AccessDenied`` without it) and ``{model, input: {prompt, negative_prompt?, img_url?},
  parameters: {size | resolution, duration, prompt_extend?, seed?}}``; it answers ``{output: {task_id,
  task_status: "PENDING"}, request_id}``. Text-to-video models take ``size``, image-to-video models
  ``resolution`` and an ``img_url``.
- ``GET /api/v1/tasks/{task_id}``: ``PENDING`` then ``RUNNING`` for ``polls_before_ready`` polls, then
  ``SUCCEEDED`` (``output.video_url``, an MP4 hosted here, and ``usage``) or ``FAILED``
  (``output.code``/``message``: ``InternalError``, or ``DataInspectionFailed`` when moderated). An
  unknown id answers ``task_status: "UNKNOWN"``.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from tests.upstreams.imaging import JSON
from tests.upstreams.videosim import FAILED, IN_PROGRESS, MODERATED, VideoSim

T2V_SIZES = frozenset(
    {"1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632", "832*480", "480*832", "624*624"}
)
# model -> "t2v" | "i2v"
MODELS = {
    "wan2.2-t2v-plus": "t2v",
    "wan2.2-i2v-plus": "i2v",
    "wan2.1-t2v-turbo": "t2v",
    "wan2.1-i2v-turbo": "i2v",
}
_CODES = {
    400: "InvalidParameter",
    401: "InvalidApiKey",
    403: "AccessDenied",
    429: "Throttling.RateQuota",
    500: "InternalError",
    503: "ServiceUnavailable",
}


class WanSim(VideoSim):
    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v1/services/aigc/video-generation/video-synthesis", self._create),
            web.get("/api/v1/tasks/{task_id}", self._get),
        ]

    def error_body(self, status: int, message: str) -> JSON:
        return {
            "code": _CODES.get(status, "InternalError"),
            "message": message,
            "request_id": str(uuid.uuid4()),
        }

    def _error(self, status: int, code: str, message: str) -> web.Response:
        return web.json_response(
            {"code": code, "message": message, "request_id": str(uuid.uuid4())}, status=status
        )

    def _refusal(self, request: web.Request) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:].strip() not in self.api_keys:
            return self._error(401, "InvalidApiKey", "Invalid API-key provided.")
        return None

    async def _create(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        if request.headers.get("X-DashScope-Async") != "enable":
            return self._error(403, "AccessDenied", "current user api does not support synchronous calls")
        problem = _validate(body)
        if problem is not None:
            return self._error(400, "InvalidParameter", problem)
        if "forbidden" in body["input"]["prompt"].lower():
            return self._error(400, "DataInspectionFailed", "Input data may contain inappropriate content.")
        job = self.new_job(body, job_id=str(uuid.uuid4()))
        return web.json_response(
            {"output": {"task_id": job.id, "task_status": "PENDING"}, "request_id": str(uuid.uuid4())}
        )

    async def _get(self, request: web.Request) -> web.StreamResponse:
        injected = self.take_injected_failure() or self._refusal(request)
        if injected is not None:
            return injected
        task_id = request.match_info["task_id"]
        job = self.jobs.get(task_id)
        request_id = str(uuid.uuid4())
        if job is None:
            return web.json_response(
                {"request_id": request_id, "output": {"task_id": task_id, "task_status": "UNKNOWN"}}
            )
        state = self.advance(job)
        output: JSON = {"task_id": job.id, "submit_time": "2025-08-14 09:34:45.529", "orig_prompt": ""}
        answer: JSON = {"request_id": request_id, "output": output}
        if state == IN_PROGRESS:
            output["task_status"] = "PENDING" if job.polls == 1 else "RUNNING"
        elif state == FAILED:
            output.update(
                task_status="FAILED", code="InternalError", message="An internal error has occured."
            )
        elif state == MODERATED:
            output.update(
                task_status="FAILED",
                code="DataInspectionFailed",
                message="Output data may contain inappropriate content.",
            )
        else:
            output.update(
                task_status="SUCCEEDED", video_url=job.outputs[0], end_time="2025-08-14 09:36:01.112"
            )
            size = job.request["parameters"].get("size") or job.request["parameters"].get("resolution")
            answer["usage"] = {
                "video_duration": job.request["parameters"].get("duration", 5),
                "video_ratio": size,
                "video_count": 1,
            }
        return web.json_response(answer)


def _validate(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    kind = MODELS.get(body.get("model", ""))
    if kind is None:
        return f"Model not exist: {body.get('model')}"
    inputs = body.get("input")
    params = body.get("parameters") or {}
    if not isinstance(inputs, dict) or not isinstance(inputs.get("prompt"), str):
        return "input.prompt is required"
    if not isinstance(params, dict):
        return "parameters must be an object"
    if params.get("duration", 5) != 5:
        return "parameters.duration must be 5"
    if "prompt_extend" in params and not isinstance(params["prompt_extend"], bool):
        return "parameters.prompt_extend must be a boolean"
    if kind == "t2v":
        if "img_url" in inputs:
            return "input.img_url is not a parameter of a text-to-video model"
        if params.get("size", "1920*1080") not in T2V_SIZES:
            return f"parameters.size {params.get('size')!r} is not supported"
    else:
        url = inputs.get("img_url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://", "data:image/")):
            return "input.img_url must be an image URL or a data:image base64 string"
        if params.get("resolution", "1080P") not in ("480P", "1080P"):
            return "parameters.resolution must be 480P or 1080P"
    return None


def channel_base_url(sim: WanSim) -> str:
    return sim.base_url


Sim = WanSim
