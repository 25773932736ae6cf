"""Vidu's enterprise API: ``POST /ent/v2/text2video`` | ``img2video`` | ``start-end2video``, then poll.

The channel's ``base_url`` is ``https://api.vidu.com`` (``https://api.vidu.cn`` in mainland China);
auth is ``Authorization: Token <key>``. A create call answers ``{task_id, state: "created", ...}``;
``GET /ent/v2/tasks/{id}/creations`` answers ``{id, state, err_code, credits, creations: [{id, url,
cover_url}]}`` with ``state`` ``created`` | ``queueing`` | ``processing`` | ``success`` | ``failed``.
Images go in ``images`` (a URL or a ``data:image/...;base64,`` string each); a first and a last frame
use ``start-end2video``. Errors are ``{code, reason, message, metadata}`` with the HTTP status;
``ERR_CODES`` maps the ``err_code`` of a failed task (and the ``reason`` of an error answer).
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.core.videos import (
    CLIENT,
    MODERATED,
    MODERATION_MARKERS,
    RATE,
    SERVER,
    ErrorRule,
    VideoAdapter,
    VideoJob,
    VideoResult,
    marker_in,
    missing_id,
    not_json_object,
    str_field,
    trim_inline,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import generation_failed

IN_PROGRESS = frozenset({"created", "queueing", "processing"})
SUCCESS = "success"
FAILED = "failed"
# Client extras passed on (never callback_url: the gateway polls, and calls the client's webhook).
EXTRA_FIELDS = ("seed", "movement_amplitude", "bgm", "style", "payload", "off_peak")
T2V_ONLY = ("aspect_ratio", "style")

# err_code (failed task) or reason (error answer) -> what it means
ERR_CODES: dict[str, ErrorRule] = {
    "CreditInsufficient": ErrorRule(402, True, False),  # the channel's account is out of credits
    "Unauthorized": ErrorRule(401, True, False),
    "TooManyRequests": RATE,
    "SystemThrottling": RATE,
    "TaskPromptPolicyViolation": MODERATED,  # the prompt failed the content check
    "ImagePolicyViolation": MODERATED,  # an input image failed the content check
    "CreationPolicyViolation": MODERATED,  # the result failed the content check
    "ImageDownloadFailure": CLIENT,  # an input image URL could not be fetched
    "ImageFormatInvalid": CLIENT,
    "BadRequest": CLIENT,
    "InternalServiceFailure": SERVER,
}


def err_rule(code: str | None) -> ErrorRule:
    if not code:
        return SERVER
    if code in ERR_CODES:
        return ERR_CODES[code]
    return MODERATED if marker_in(code, MODERATION_MARKERS) else SERVER


def to_request(job: VideoJob) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {"model": job.upstream_model}
    if job.prompt:
        body["prompt"] = job.prompt
    body["duration"] = job.seconds
    if job.resolution:
        body["resolution"] = job.resolution.lower()
    if job.mode == "t2v":
        path = "/ent/v2/text2video"
        if job.aspect_ratio:
            body["aspect_ratio"] = job.aspect_ratio
    elif job.mode == "i2v":
        first, last = job.image_ref(), job.end_image_ref()
        if first and last:
            path, body["images"] = "/ent/v2/start-end2video", [first, last]
        else:
            path, body["images"] = "/ent/v2/img2video", [first or last]
    else:
        raise ProviderError(
            FailureKind.HTTP, f"Vidu does not do {job.mode}", status=400, retryable=False, client_fault=True
        )
    for name in EXTRA_FIELDS:
        if job.extra.get(name) is not None and (job.mode == "t2v" or name not in T2V_ONLY):
            body[name] = job.extra[name]
    return path, body


def from_creations(body: Any) -> VideoResult | None:
    if not isinstance(body, dict):
        raise not_json_object("Vidu")
    state = body.get("state")
    if state == SUCCESS:
        creations = body.get("creations")
        first = (
            creations[0]
            if isinstance(creations, list) and creations and isinstance(creations[0], dict)
            else {}
        )
        url = str_field(first, "url")
        if url is None:
            raise generation_failed("Vidu: the task succeeded without a creation")
        return VideoResult(
            url=url,
            raw=trim_inline(body),
            upstream_task_id=str_field(body, "id"),
            cover_url=str_field(first, "cover_url"),
        )
    if state == FAILED:
        code = str_field(body, "err_code")
        rule = err_rule(code)
        raise generation_failed(
            f"Vidu: the task failed ({code or 'no err_code'})", moderated=rule.client_fault
        )
    return None


class ViduVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "vidu"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        reason = str_field(body, "reason")
        return ERR_CODES.get(reason) if reason else None

    def message_of(self, body: Any, fallback: str) -> str:
        message = str_field(body, "message")
        reason = str_field(body, "reason")
        if message:
            return f"Vidu: {message}" + (f" ({reason})" if reason else "")
        return fallback

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Token {api_key}"}

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        path, body = to_request(job)
        answer = await self.request(
            "POST", f"{self.base_url}{path}", deadline=deadline, headers=self._headers(api_key), json=body
        )
        task_id = str_field(answer, "task_id")
        if task_id is None:
            raise missing_id("Vidu")
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        url = f"{self.base_url}/ent/v2/tasks/{quote(task_id, safe='')}/creations"
        answer = await self.request("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_creations(answer)
        if result is not None and result.upstream_task_id is None:
            result.upstream_task_id = task_id
        return result
