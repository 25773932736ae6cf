"""Runway's API: ``POST /v1/image_to_video`` | ``/v1/text_to_video`` | ``/v1/video_to_video``, then poll.

The channel's ``base_url`` is ``https://api.dev.runwayml.com``. Every call carries
``Authorization: Bearer <key>`` and ``X-Runway-Version: 2024-11-06``. A create call answers ``{id}``;
``GET /v1/tasks/{id}`` answers ``{id, status, output, failure, failureCode, progress}`` with ``status``
``PENDING`` | ``THROTTLED`` | ``RUNNING`` | ``SUCCEEDED`` | ``FAILED`` | ``CANCELLED``; ``output`` is the
list of result URLs. Runway sizes frames as pixel ratios (``1280:720``), mapped from ``aspect_ratio``
through ``RATIOS``. Errors are ``{"error": "...", "issues"?: [...]}`` with a plain HTTP status.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.core.videos import (
    CLIENT,
    MODERATED,
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

API_VERSION = "2024-11-06"
PATHS = {"t2v": "/v1/text_to_video", "i2v": "/v1/image_to_video", "v2v": "/v1/video_to_video"}
# aspect_ratio -> Runway's pixel ratio
RATIOS = {
    "16:9": "1280:720",
    "9:16": "720:1280",
    "4:3": "1104:832",
    "3:4": "832:1104",
    "1:1": "960:960",
    "21:9": "1584:672",
}
IN_PROGRESS = frozenset({"PENDING", "THROTTLED", "RUNNING"})
SUCCEEDED = "SUCCEEDED"
FAILED = frozenset({"FAILED", "CANCELLED"})
EXTRA_FIELDS = ("seed", "contentModeration", "ratio", "references")

# failureCode prefix -> what it means (longest prefix wins)
FAILURE_CODES: dict[str, ErrorRule] = {
    "SAFETY": MODERATED,  # the input or output failed Runway's content moderation
    "INPUT_PREPROCESSING.SAFETY": MODERATED,
    "INPUT_PREPROCESSING": CLIENT,  # the input could not be used (size, format)
    "ASSET.INVALID": CLIENT,  # an input asset is not a usable image or video
    "INTERNAL.BAD_OUTPUT": SERVER,
    "INTERNAL": SERVER,
}
# A 400 about the channel's account rather than the request.
_CHANNEL_MARKERS = ("credit", "billing", "balance", "quota")


def to_request(job: VideoJob) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) of the create call."""
    body: dict[str, Any] = {"model": job.upstream_model}
    if job.prompt:
        body["promptText"] = job.prompt
    if job.mode == "i2v":
        first = job.image_ref()
        last = job.end_image_ref()
        if last is not None:
            frames = [{"uri": first, "position": "first"}] if first else []
            body["promptImage"] = [*frames, {"uri": last, "position": "last"}]
        else:
            body["promptImage"] = first
    elif job.mode == "v2v":
        body["videoUri"] = job.video_url
    body["ratio"] = RATIOS.get(job.aspect_ratio or "16:9", RATIOS["16:9"])
    if job.mode != "v2v":
        body["duration"] = job.seconds
    for name in EXTRA_FIELDS:
        if job.extra.get(name) is not None:
            body[name] = job.extra[name]
    return PATHS[job.mode], body


def failure_rule(code: str | None) -> ErrorRule:
    if not code:
        return SERVER
    matches = [prefix for prefix in FAILURE_CODES if code == prefix or code.startswith(prefix + ".")]
    return FAILURE_CODES[max(matches, key=len)] if matches else SERVER


def from_task(body: Any) -> VideoResult | None:
    """A task answer as a result; None while pending/throttled/running; raises when it failed."""
    if not isinstance(body, dict):
        raise not_json_object("Runway")
    status = body.get("status")
    if status == SUCCEEDED:
        output = body.get("output")
        url = output[0] if isinstance(output, list) and output and isinstance(output[0], str) else None
        if not url:
            raise generation_failed("Runway: the task succeeded without an output")
        return VideoResult(url=url, raw=trim_inline(body), upstream_task_id=str_field(body, "id"))
    if status in FAILED:
        code = str_field(body, "failureCode")
        reason = str_field(body, "failure") or (
            "the task was cancelled" if status == "CANCELLED" else "failed"
        )
        rule = failure_rule(code)
        text = f"Runway: {reason}" + (f" ({code})" if code else "")
        raise generation_failed(text, moderated=rule.client_fault)
    return None


class RunwayVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "runway"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        message = (str_field(body, "error") or "").lower()
        if status in (400, 403) and any(marker in message for marker in _CHANNEL_MARKERS):
            return ErrorRule(402, True, False)
        return None

    def message_of(self, body: Any, fallback: str) -> str:
        message = str_field(body, "error")
        issues = body.get("issues") if isinstance(body, dict) else None
        if message and isinstance(issues, list) and issues:
            details = "; ".join(str(i.get("message", i)) if isinstance(i, dict) else str(i) for i in issues)
            return f"Runway: {message}: {details}"
        return f"Runway: {message}" if message else fallback

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "X-Runway-Version": API_VERSION}

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        if job.mode not in PATHS:
            raise ProviderError(
                FailureKind.HTTP,
                f"Runway does not do {job.mode}",
                status=400,
                retryable=False,
                client_fault=True,
            )
        path, body = to_request(job)
        answer = await self.request(
            "POST", f"{self.base_url}{path}", deadline=deadline, headers=self._headers(api_key), json=body
        )
        task_id = str_field(answer, "id")
        if task_id is None:
            raise missing_id("Runway")
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        url = f"{self.base_url}/v1/tasks/{quote(task_id, safe='')}"
        answer = await self.request("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_task(answer)
        if result is not None and result.upstream_task_id is None:
            result.upstream_task_id = task_id
        return result
