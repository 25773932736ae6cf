"""MiniMax image generation: ``POST {base_url}/v1/image_generation`` with a Bearer key.

The channel's ``base_url`` is ``https://api.minimax.io`` (or ``https://api.minimaxi.com`` in
mainland China). MiniMax reports errors inside ``base_resp`` of an HTTP 200 answer; the
``status_code`` is mapped through ``STATUS_CODES`` to the HTTP status it amounts to (which the
raised error carries) and to the routing decision. Images the content check removed are counted in
``metadata.failed_count``; an answer with none left is a refusal.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed
from omnirelay.providers.openai_compat.errors import classify_status

MINIMAX_RATIOS: dict[str, float] = {
    "1:1": 1.0,
    "16:9": 16 / 9,
    "4:3": 4 / 3,
    "3:2": 3 / 2,
    "2:3": 2 / 3,
    "3:4": 3 / 4,
    "9:16": 9 / 16,
    "21:9": 21 / 9,
}
# Ratios MiniMax has no name for are sent as an explicit size (sides in [512, 2048], multiples of 8).
EXPLICIT_SIZES: dict[str, tuple[int, int]] = {"9:21": (576, 1344)}
MIN_SIDE, MAX_SIDE = 512, 2048
MAX_IMAGES = 9


@dataclass(frozen=True, slots=True)
class CodeRule:
    """What a ``base_resp.status_code`` means: the HTTP status it amounts to, and how to route it."""

    status: int
    retryable: bool
    client_fault: bool
    moderated: bool = False


_MODERATED = CodeRule(422, False, True, moderated=True)
STATUS_CODES: dict[int, CodeRule] = {
    1000: CodeRule(500, True, False),  # unknown error
    1001: CodeRule(504, True, False),  # request timeout
    1002: CodeRule(429, True, False),  # rate limit (RPM)
    1004: CodeRule(401, True, False),  # not authorized: the channel's key
    1008: CodeRule(402, True, False),  # insufficient balance on the channel's account
    1013: CodeRule(500, True, False),  # internal service error
    1026: _MODERATED,  # input new_sensitive: the prompt failed the content check
    1027: _MODERATED,  # output new_sensitive: the result failed the content check
    1039: CodeRule(429, True, False),  # token rate limit (TPM)
    1041: CodeRule(429, True, False),  # connection limit
    2013: CodeRule(400, False, True),  # invalid params
    2049: CodeRule(401, True, False),  # invalid api key
    2056: CodeRule(429, True, False),  # usage limit exceeded
}
SUCCESS = 0
_UNKNOWN = CodeRule(502, True, False)


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


def code_error(body: dict[str, Any]) -> ProviderError:
    """The error for an answer whose ``base_resp.status_code`` is not 0."""
    code, message = base_resp(body)
    rule = STATUS_CODES.get(code, _UNKNOWN) if code is not None else _UNKNOWN
    text = f"MiniMax: {message or 'error'} (status_code {code})"
    if rule.moderated:
        return generation_failed(text, moderated=True)
    return ProviderError(
        FailureKind.HTTP,
        text,
        status=rule.status,
        body=body,
        retryable=rule.retryable,
        client_fault=rule.client_fault,
    )


def minimax_geometry(aspect_ratio: str | None, width: int, height: int) -> dict[str, Any]:
    """``aspect_ratio`` when MiniMax names the ratio, else an explicit ``width``/``height``."""
    if aspect_ratio in MINIMAX_RATIOS:
        return {"aspect_ratio": aspect_ratio}
    if aspect_ratio in EXPLICIT_SIZES:
        w, h = EXPLICIT_SIZES[aspect_ratio]
        return {"width": w, "height": h}
    wanted = width / height if width > 0 and height > 0 else 1.0
    nearest = min(MINIMAX_RATIOS, key=lambda name: abs(math.log(MINIMAX_RATIOS[name] / wanted)))
    return {"aspect_ratio": nearest}


def minimax_request(job: ImageJob) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": job.spec.upstream_model,
        "prompt": job.prompt,
        **minimax_geometry(job.aspect_ratio, job.width, job.height),
        "response_format": str(job.spec.options.get("response_format", "url")),
        "n": min(max(1, job.n), MAX_IMAGES),
    }
    optimizer = job.extra.get("prompt_optimizer")
    if isinstance(optimizer, bool):
        body["prompt_optimizer"] = optimizer
    if job.seed is not None:
        body["seed"] = job.seed
    if job.image is not None:
        body["subject_reference"] = [{"type": "character", "image_file": job.image.data_url()}]
    return body


def _count(value: Any) -> int:
    """MiniMax sends the metadata counts as strings ("1"); accept numbers too."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return 0


def minimax_images(body: Any) -> list[GeneratedImage]:
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, dict):
        return []
    images: list[GeneratedImage] = []
    for value in data.get("image_base64") or []:
        if isinstance(value, str) and value:
            try:
                images.append(GeneratedImage(data=base64.b64decode(value, validate=True)))
            except (binascii.Error, ValueError) as exc:
                raise ProviderError(
                    FailureKind.HTTP, "MiniMax sent an image that is not valid base64", retryable=True
                ) from exc
    for value in data.get("image_urls") or []:
        if isinstance(value, str) and value:
            images.append(GeneratedImage(url=value))
    return images


def trim_base64(body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return body
    data = dict(body["data"])
    if isinstance(data.get("image_base64"), list):
        data["image_base64"] = [
            f"<{len(v)} base64 characters omitted>" if isinstance(v, str) else v for v in data["image_base64"]
        ]
    return {**body, "data": data}


class MinimaxImageAdapter(ImageAdapter):
    id: ClassVar[str] = "minimax"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        code, _ = base_resp(body)
        if code is not None and code in STATUS_CODES:
            rule = STATUS_CODES[code]
            return rule.retryable, rule.client_fault
        return classify_status(status, body if isinstance(body, dict) else None)

    def message_of(self, body: Any, fallback: str) -> str:
        _, message = base_resp(body)
        return message or super().message_of(body, fallback)

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        body = await self.call_json(
            "POST",
            f"{self.base_url}/v1/image_generation",
            deadline=deadline,
            headers={"Authorization": f"Bearer {api_key}"},
            json=minimax_request(job),
        )
        code, _ = base_resp(body)
        if code != SUCCESS:
            raise code_error(body if isinstance(body, dict) else {})
        images = minimax_images(body)
        if not images:
            metadata = body.get("metadata") if isinstance(body, dict) else None
            failed = _count(metadata.get("failed_count")) if isinstance(metadata, dict) else 0
            if failed > 0:
                raise generation_failed(
                    f"MiniMax withheld all {failed} image(s): they failed the content check", moderated=True
                )
            raise generation_failed("MiniMax finished without an image")
        return ImageResult(images=images, raw=trim_base64(body))
