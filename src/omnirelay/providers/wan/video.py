"""Alibaba Wan through DashScope's asynchronous video synthesis, then the task API.

The channel's ``base_url`` is ``https://dashscope-intl.aliyuncs.com`` (``https://dashscope.aliyuncs.com``
in mainland China), auth ``Authorization: Bearer <key>``. The create call
``POST /api/v1/services/aigc/video-generation/video-synthesis`` carries ``X-DashScope-Async: enable``
and ``{model, input: {prompt, negative_prompt?, img_url?}, parameters: {size | resolution, duration,
prompt_extend?, seed?}}``; it answers ``{output: {task_id, task_status}, request_id}``. ``GET
/api/v1/tasks/{task_id}`` answers ``{output: {task_status, video_url, code?, message?}, usage}`` with
``task_status`` ``PENDING`` | ``RUNNING`` | ``SUCCEEDED`` | ``FAILED`` | ``CANCELED`` (``UNKNOWN`` for an
expired id). Errors are ``{code, message, request_id}``; ``CODES`` maps ``code`` (a dotted code
matches its longest listed prefix).

Text-to-video sizes frames as ``size`` ``"W*H"`` (``SIZES``, from resolution and aspect ratio);
image-to-video takes ``resolution`` and follows the image's shape.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.core.videos import (
    CHANNEL,
    CLIENT,
    MODERATED,
    RATE,
    SERVER,
    ErrorRule,
    VideoAdapter,
    VideoJob,
    VideoResult,
    missing_id,
    not_json_object,
    str_field,
    trim_inline,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import generation_failed

SYNTHESIS_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
IN_PROGRESS = frozenset({"PENDING", "RUNNING"})
SUCCEEDED = "SUCCEEDED"
FAILED = frozenset({"FAILED", "CANCELED"})
# (resolution, aspect_ratio) -> size, for text-to-video
SIZES: dict[tuple[str, str], str] = {
    ("1080P", "16:9"): "1920*1080",
    ("1080P", "9:16"): "1080*1920",
    ("1080P", "1:1"): "1440*1440",
    ("1080P", "4:3"): "1632*1248",
    ("1080P", "3:4"): "1248*1632",
    ("480P", "16:9"): "832*480",
    ("480P", "9:16"): "480*832",
    ("480P", "1:1"): "624*624",
}
PARAMETER_EXTRAS = ("prompt_extend", "seed", "watermark", "size")

# DashScope ``code`` -> what it means
CODES: dict[str, ErrorRule] = {
    "InvalidApiKey": CHANNEL,
    "AccessDenied": ErrorRule(403, True, False),  # the channel's account lacks the model (.Unpurchased)
    "Arrearage": ErrorRule(402, True, False),  # the channel's account is in arrears
    "Throttling": RATE,  # .RateQuota, .AllocationQuota, .BurstRate
    "InvalidParameter": CLIENT,
    "InvalidURL": CLIENT,
    "DataInspectionFailed": MODERATED,  # the input or output failed the content check
    "IPInfringementSuspect": MODERATED,
    "InternalError": SERVER,
    "SystemError": SERVER,
}


def code_rule(code: str | None) -> ErrorRule | None:
    if not code:
        return None
    matches = [prefix for prefix in CODES if code == prefix or code.startswith(prefix + ".")]
    return CODES[max(matches, key=len)] if matches else None


def to_request(job: VideoJob) -> dict[str, Any]:
    if job.mode not in ("t2v", "i2v"):
        raise ProviderError(
            FailureKind.HTTP, f"Wan does not do {job.mode}", status=400, retryable=False, client_fault=True
        )
    resolution = (job.resolution or str(job.spec.default_of("resolution") or "1080P")).upper()
    inputs: dict[str, Any] = {"prompt": job.prompt}
    if job.negative_prompt:
        inputs["negative_prompt"] = job.negative_prompt
    parameters: dict[str, Any] = {"duration": job.seconds}
    if job.mode == "i2v":
        inputs["img_url"] = job.image_ref()
        parameters["resolution"] = resolution
    else:
        ratio = job.aspect_ratio or "16:9"
        size = SIZES.get((resolution, ratio))
        if size is None:
            raise ProviderError(
                FailureKind.HTTP,
                f"Wan has no {ratio} size at {resolution}",
                status=400,
                retryable=False,
                client_fault=True,
            )
        parameters["size"] = size
    for name in PARAMETER_EXTRAS:
        if job.extra.get(name) is not None:
            parameters[name] = job.extra[name]
    return {"model": job.upstream_model, "input": inputs, "parameters": parameters}


def from_task(body: Any) -> VideoResult | None:
    if not isinstance(body, dict) or not isinstance(body.get("output"), dict):
        raise not_json_object("DashScope")
    output = body["output"]
    status = output.get("task_status")
    if status == SUCCEEDED:
        url = str_field(output, "video_url")
        if url is None:
            raise generation_failed("Wan: the task succeeded without a video_url")
        return VideoResult(url=url, raw=trim_inline(body), upstream_task_id=str_field(output, "task_id"))
    if status in FAILED:
        code = str_field(output, "code")
        message = str_field(output, "message") or (
            "the task was cancelled" if status == "CANCELED" else "failed"
        )
        rule = code_rule(code) or SERVER
        raise generation_failed(
            f"Wan: {message}" + (f" ({code})" if code else ""), moderated=rule.client_fault
        )
    if status == "UNKNOWN":
        raise generation_failed("Wan: the task is unknown (expired or never created)")
    return None


class WanVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "wan"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        return code_rule(str_field(body, "code"))

    def message_of(self, body: Any, fallback: str) -> str:
        message, code = str_field(body, "message"), str_field(body, "code")
        return f"DashScope: {message}" + (f" ({code})" if code else "") if message else fallback

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        headers = {"Authorization": f"Bearer {api_key}", "X-DashScope-Async": "enable"}
        answer = await self.request(
            "POST",
            f"{self.base_url}{SYNTHESIS_PATH}",
            deadline=deadline,
            headers=headers,
            json=to_request(job),
        )
        task_id = str_field(answer, "output", "task_id")
        if task_id is None:
            raise missing_id("DashScope")
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        url = f"{self.base_url}/api/v1/tasks/{quote(task_id, safe='')}"
        answer = await self.request(
            "GET", url, deadline=deadline, headers={"Authorization": f"Bearer {api_key}"}
        )
        result = from_task(answer)
        if result is not None and result.upstream_task_id is None:
            result.upstream_task_id = task_id
        return result
