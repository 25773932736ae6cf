"""Baidu Qianfan v2 image generation (iRAG): ``POST {base_url}/images/generations``.

The channel's ``base_url`` is the v2 API root, e.g. ``https://qianfan.baidubce.com/v2``; the key is
a Qianfan API key sent as ``Authorization: Bearer <key>``. Synchronous: the answer carries image
URLs. Errors follow Qianfan v2's OpenAI-like shape ``{"error": {"code", "message", "type"}, "id"}``.
See docs/providers/baidu_irag.md.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed

MIN_SIDE, MAX_SIDE = 512, 2048
RETRY = (True, False)
CLIENT = (False, True)
# error.code -> (retry on another channel, the client's fault); other codes follow the status.
CODE_RULES: dict[str, tuple[bool, bool]] = {
    "malformed_json": CLIENT,
    "invalid_argument": CLIENT,
    "invalid_parameter": CLIENT,
    "characters_too_long": CLIENT,
    "invalid_iam_token": RETRY,
    "access_denied": RETRY,
    "no_permission": RETRY,
    "invalid_model": RETRY,  # model missing or not opened for the channel's account
    "rate_limit_exceeded": RETRY,
    "rpm_rate_limit_exceeded": RETRY,
    "tpm_rate_limit_exceeded": RETRY,
    "quota_exceeded": RETRY,
    "insufficient_balance": RETRY,
    "server_internal_error": RETRY,
    "internal_error": RETRY,
}
# Codes taken to mean the prompt or reference image was refused by content review. Qianfan's v2
# reference names no dedicated code for images; these are the names its other services use.
MODERATION_CODES = frozenset(
    {"sensitive_content", "content_filter", "content_risk", "sensitive_words_detected"}
)


# --- pure mapping ------------------------------------------------------------------------------


def pick_size(job: ImageJob) -> str:
    """``job.size``, else width x height with each side clamped to 512..2048."""
    if job.size:
        return job.size
    width = min(max(job.width, MIN_SIDE), MAX_SIDE)
    height = min(max(job.height, MIN_SIDE), MAX_SIDE)
    return f"{width}x{height}"


def to_request(job: ImageJob) -> dict[str, Any]:
    """The JSON body of ``POST /images/generations`` for ``job``."""
    body: dict[str, Any] = {
        "model": job.spec.upstream_model,
        "prompt": job.prompt,
        "n": job.n,
        "size": pick_size(job),
    }
    refer = job.extra.get("refer_image")
    if isinstance(refer, str) and refer:
        body["refer_image"] = refer
    user = job.extra.get("user")
    if isinstance(user, str) and user:
        body["user"] = user
    return body


def from_response(body: Any) -> list[GeneratedImage]:
    data = body.get("data") if isinstance(body, dict) else None
    return [
        GeneratedImage(url=item["url"])
        for item in (data if isinstance(data, list) else [])
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"]
    ]


def error_fields(body: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    """(code, message) of a Qianfan error: nested under "error", at the top, or v1's error_code."""
    if not isinstance(body, Mapping):
        return None, None
    error = body.get("error")
    source: Mapping[str, Any] = error if isinstance(error, Mapping) else body
    code = source.get("code", body.get("error_code"))
    message = source.get("message", body.get("error_msg"))
    return (
        str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None,
        message if isinstance(message, str) else None,
    )


def classify_error(status: int, body: Any) -> tuple[bool, bool]:
    code, _ = error_fields(body if isinstance(body, dict) else None)
    if code in MODERATION_CODES:
        return CLIENT
    if code in CODE_RULES:
        return CODE_RULES[code]
    if status in (401, 403, 408, 429) or status >= 500:
        return RETRY
    return CLIENT


# --- adapter -----------------------------------------------------------------------------------


class BaiduIragImageAdapter(ImageAdapter):
    id: ClassVar[str] = "baidu_irag"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        return classify_error(status, body)

    def message_of(self, body: Any, fallback: str) -> str:
        _, message = error_fields(body if isinstance(body, dict) else None)
        return message or fallback

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        try:
            body = await self.call_json(
                "POST",
                f"{self.base_url.rstrip('/')}/images/generations",
                deadline=deadline,
                headers={"Authorization": f"Bearer {api_key}"},
                json=to_request(job),
            )
        except ProviderError as exc:
            code, _ = error_fields(exc.body)
            if exc.kind is FailureKind.HTTP and code in MODERATION_CODES:
                refused = generation_failed(exc.message, moderated=True)
                refused.body = exc.body
                raise refused from exc
            raise
        images = from_response(body)
        if not images:
            raise generation_failed("the upstream answered without an image")
        upstream_id = body.get("id") if isinstance(body, dict) else None
        return ImageResult(
            images=images, raw=body, upstream_task_id=upstream_id if isinstance(upstream_id, str) else None
        )
