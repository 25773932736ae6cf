"""MiniMax (Hailuo) video: ``POST /v1/video_generation``, poll, then look the file up.

The channel's ``base_url`` is ``https://api.minimax.io`` (``https://api.minimaxi.com`` in mainland
China), auth ``Authorization: Bearer <key>``. Three calls per job:

1. ``POST /v1/video_generation`` ``{model, prompt, duration, resolution, first_frame_image?,
   prompt_optimizer?}`` -> ``{task_id, base_resp}``;
2. ``GET /v1/query/video_generation?task_id=`` -> ``{task_id, status, file_id, base_resp}`` with
   ``status`` ``Preparing`` | ``Queueing`` | ``Processing`` | ``Success`` | ``Fail``;
3. on ``Success``, ``GET /v1/files/retrieve?file_id=`` -> ``{file: {download_url, ...}, base_resp}``.

MiniMax reports errors inside ``base_resp`` of an HTTP 200 answer; ``CODES`` maps each
``status_code`` to the HTTP status it amounts to and the routing decision.
"""

from __future__ import annotations

from typing import Any, ClassVar

from omnirelay.core.videos import (
    CHANNEL,
    CLIENT,
    MODERATED,
    RATE,
    SERVER,
    UNKNOWN,
    ErrorRule,
    VideoAdapter,
    VideoJob,
    VideoResult,
    missing_id,
    not_json_object,
    rule_error,
    str_field,
    trim_inline,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import generation_failed

SUCCESS = 0
IN_PROGRESS = frozenset({"Preparing", "Queueing", "Processing"})
DONE = "Success"
FAILED = "Fail"
# Client extras passed on (never callback_url: the gateway polls, and calls the client's webhook).
EXTRA_FIELDS = ("prompt_optimizer", "fast_pretreatment")

# base_resp.status_code -> what it means
CODES: dict[int, ErrorRule] = {
    1000: SERVER,  # unknown error
    1001: ErrorRule(504, True, False),  # request timeout
    1002: RATE,  # rate limit
    1004: CHANNEL,  # not authorized
    1008: ErrorRule(402, True, False),  # insufficient balance on the channel's account
    1013: SERVER,  # internal service error
    1026: MODERATED,  # the prompt failed the content check
    1027: MODERATED,  # the generated video failed the content check
    1039: RATE,  # token rate limit
    1041: RATE,  # connection limit
    1042: CLIENT,  # invisible characters in the prompt over the limit
    2013: CLIENT,  # invalid parameters
    2049: CHANNEL,  # invalid api key
    2056: RATE,  # usage limit exceeded
}


def base_resp(body: Any) -> tuple[int | None, str]:
    resp = body.get("base_resp") if isinstance(body, dict) else None
    if not isinstance(resp, dict):
        return None, ""
    code = resp.get("status_code")
    message = resp.get("status_msg")
    return (
        code if isinstance(code, int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else "",
    )


def code_error(body: Any) -> ProviderError:
    """The error of an answer whose ``base_resp.status_code`` is not 0 (or that has none)."""
    code, message = base_resp(body)
    rule = CODES.get(code, UNKNOWN) if code is not None else UNKNOWN
    return rule_error(rule, f"MiniMax: {message or 'error'} (status_code {code})", body)


def _ok(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise not_json_object("MiniMax")
    code, _ = base_resp(body)
    if code != SUCCESS:
        raise code_error(body)
    return body


def to_request(job: VideoJob) -> dict[str, Any]:
    if job.mode not in ("t2v", "i2v"):
        raise ProviderError(
            FailureKind.HTTP,
            f"MiniMax does not do {job.mode}",
            status=400,
            retryable=False,
            client_fault=True,
        )
    body: dict[str, Any] = {"model": job.upstream_model, "prompt": job.prompt, "duration": job.seconds}
    if job.resolution:
        body["resolution"] = job.resolution.upper()
    if job.image is not None:
        body["first_frame_image"] = job.image_ref()
    if job.end_image is not None:
        body["last_frame_image"] = job.end_image_ref()
    for name in EXTRA_FIELDS:
        if job.extra.get(name) is not None:
            body[name] = job.extra[name]
    return body


def query_state(body: Any) -> tuple[str, str | None]:
    """(status, file_id) of a query answer; raises on a failed job."""
    answer = _ok(body)
    status = str(answer.get("status") or "")
    if status == FAILED:
        raise generation_failed("MiniMax: the video generation failed")
    return status, str_field(answer, "file_id")


class MinimaxVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "minimax_video"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        code, _ = base_resp(body)
        return CODES.get(code) if code is not None else None

    def message_of(self, body: Any, fallback: str) -> str:
        code, message = base_resp(body)
        return f"MiniMax: {message} (status_code {code})" if message else fallback

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        answer = _ok(
            await self.request(
                "POST",
                f"{self.base_url}/v1/video_generation",
                deadline=deadline,
                headers=self._headers(api_key),
                json=to_request(job),
            )
        )
        task_id = str_field(answer, "task_id")
        if task_id is None:
            raise missing_id("MiniMax")
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        query = await self.request(
            "GET",
            f"{self.base_url}/v1/query/video_generation",
            deadline=deadline,
            headers=self._headers(api_key),
            params={"task_id": task_id},
        )
        status, file_id = query_state(query)
        if status != DONE:
            return None  # Preparing, Queueing, Processing, or a state not known yet
        if file_id is None:
            raise generation_failed("MiniMax: the job succeeded without a file_id")
        found = _ok(
            await self.request(
                "GET",
                f"{self.base_url}/v1/files/retrieve",
                deadline=deadline,
                headers=self._headers(api_key),
                params={"file_id": file_id},
            )
        )
        url = str_field(found, "file", "download_url")
        if url is None:
            raise generation_failed("MiniMax: the file has no download_url")
        return VideoResult(
            url=url, raw=trim_inline({**query, "file": found.get("file")}), upstream_task_id=task_id
        )
