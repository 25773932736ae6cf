"""Luma's Dream Machine video API (Ray): create a generation, then poll it.

``POST {base}/dream-machine/v1/generations`` (``Authorization: Bearer``) with ``{prompt, model,
aspect_ratio, resolution, duration ("5s"), loop, keyframes: {frame0, frame1}}`` answers a generation
object ``{id, generation_type: "video", state, failure_reason, assets}``; ``GET
{base}/dream-machine/v1/generations/{id}`` is polled until ``state`` is ``completed`` (``assets.video``
is the MP4) or ``failed`` (``failure_reason``). ``queued`` and ``dreaming`` mean in progress. Errors
are ``{"detail": "..."}`` (a list of ``{loc, msg}`` for request validation), as for Luma's images.

Keyframes are image URLs Luma fetches: the gateway's hosted copy of the input when it has a public
base, else a data URL.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from omnirelay.core.videos import (
    MODERATION_MARKERS,
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
from omnirelay.providers.luma.images import detail_message

GENERATIONS_PATH = "/dream-machine/v1/generations"
COMPLETED = "completed"
FAILED = "failed"
IN_PROGRESS = frozenset({"queued", "dreaming"})
# Client extras passed on. Vendor callbacks are not: the gateway polls, and calls the client's webhook.
EXTRA_FIELDS = ("loop",)
_CHANNEL_MARKERS = ("credit", "balance", "billing", "quota", "subscription")


def to_request(job: VideoJob) -> dict[str, Any]:
    if job.mode not in ("t2v", "i2v"):
        raise ProviderError(
            FailureKind.HTTP, f"Luma does not do {job.mode}", status=400, retryable=False, client_fault=True
        )
    body: dict[str, Any] = {"prompt": job.prompt, "model": job.upstream_model}
    if job.aspect_ratio:
        body["aspect_ratio"] = job.aspect_ratio
    if job.resolution:
        body["resolution"] = job.resolution.lower()
    body["duration"] = f"{job.seconds}s"
    keyframes: dict[str, Any] = {}
    first, last = job.image_ref(), job.end_image_ref()
    if first:
        keyframes["frame0"] = {"type": "image", "url": first}
    if last:
        keyframes["frame1"] = {"type": "image", "url": last}
    if keyframes:
        body["keyframes"] = keyframes
    for name in EXTRA_FIELDS:
        if job.extra.get(name) is not None:
            body[name] = job.extra[name]
    return body


def from_generation(body: Any) -> VideoResult | None:
    """The generation as a result; None while queued/dreaming; raises when it failed."""
    if not isinstance(body, dict):
        raise not_json_object("Luma")
    state = body.get("state")
    if state == COMPLETED:
        url = str_field(body, "assets", "video")
        if url is None:
            raise generation_failed("Luma: the generation completed without assets.video")
        return VideoResult(
            url=url,
            raw=trim_inline(body),
            upstream_task_id=str_field(body, "id"),
            cover_url=str_field(body, "assets", "image"),
        )
    if state == FAILED:
        reason = str_field(body, "failure_reason") or "the generation failed"
        raise generation_failed(f"Luma: {reason}", moderated=marker_in(reason, MODERATION_MARKERS))
    return None


class LumaVideoAdapter(VideoAdapter):
    id: ClassVar[str] = "luma_video"

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        message = detail_message(body, "").lower()
        if status in (400, 402, 403) and any(marker in message for marker in _CHANNEL_MARKERS):
            return ErrorRule(402, True, False)
        if status == 400 and marker_in(message, MODERATION_MARKERS):
            return ErrorRule(422, False, True, moderated=True)
        return None

    def message_of(self, body: Any, fallback: str) -> str:
        message = detail_message(body, "")
        return f"Luma: {message}" if message else fallback

    def _headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        answer = await self.request(
            "POST",
            f"{self.base_url}{GENERATIONS_PATH}",
            deadline=deadline,
            headers=self._headers(api_key),
            json=to_request(job),
        )
        task_id = str_field(answer, "id")
        if task_id is None:
            raise missing_id("Luma")
        return task_id

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        url = f"{self.base_url}{GENERATIONS_PATH}/{quote(task_id, safe='')}"
        answer = await self.request("GET", url, deadline=deadline, headers=self._headers(api_key))
        result = from_generation(answer)
        if result is not None and result.upstream_task_id is None:
            result.upstream_task_id = task_id
        return result
