"""Recraft API: ``POST {base_url}/images/generations`` (synchronous, Bearer token).

The channel's ``base_url`` is the API root with its version, e.g. ``https://external.api.recraft.ai/v1``.
Recraft V2/V3 take a fixed list of sizes; ``pick_size`` maps the job onto the nearest one.
See docs/providers/recraft.md for the field mapping and the error table.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed

# Recraft V2 / V3 raster sizes, by the aspect ratio Recraft names them with (appendix of the API
# reference). 1707x1024 has no named ratio there but is accepted as an explicit size.
ASPECT_SIZES: dict[str, str] = {
    "1:1": "1024x1024",
    "2:1": "2048x1024",
    "1:2": "1024x2048",
    "3:2": "1536x1024",
    "2:3": "1024x1536",
    "4:3": "1365x1024",
    "3:4": "1024x1365",
    "5:4": "1280x1024",
    "4:5": "1024x1280",
    "6:10": "1024x1707",
    "14:10": "1434x1024",
    "10:14": "1024x1434",
    "16:9": "1820x1024",
    "9:16": "1024x1820",
}
SIZES: tuple[str, ...] = (*ASPECT_SIZES.values(), "1707x1024")
DEFAULT_STYLE = "realistic_image"
# Styles whose results are SVG: the gateway stores raster images only, so these are refused up front
# (before Recraft bills a result the gateway would then have to throw away).
VECTOR_STYLES = frozenset({"vector_illustration", "icon"})
RESPONSE_FORMATS = ("b64_json", "url")
# Client extras forwarded as they are (Recraft names).
PASS_THROUGH = ("controls", "text_layout", "image_format", "style_id")
# Substrings of an error code or message meaning the channel's account cannot pay for the call.
CREDIT_HINTS = ("credit", "balance", "quota")


# --- pure mapping ------------------------------------------------------------------------------


def _ratio(text: str, sep: str) -> float | None:
    left, found, right = text.partition(sep)
    try:
        w, h = float(left), float(right)
    except ValueError:
        return None
    return w / h if found and w > 0 and h > 0 else None


def nearest_size(ratio: float) -> str:
    """The Recraft size whose aspect ratio is closest (in log scale) to ``ratio``."""
    target = math.log(ratio)
    return min(SIZES, key=lambda size: (abs(math.log(_ratio(size, "x") or 1.0) - target), size))


def pick_size(job: ImageJob) -> str:
    """``job.size`` when Recraft takes it, else the size nearest to the aspect ratio, else to W/H."""
    if job.size in SIZES:
        return str(job.size)
    if job.aspect_ratio:
        if job.aspect_ratio in ASPECT_SIZES:
            return ASPECT_SIZES[job.aspect_ratio]
        ratio = _ratio(job.aspect_ratio, ":")
        if ratio is not None:
            return nearest_size(ratio)
    if job.size:
        ratio = _ratio(job.size.lower(), "x")
        if ratio is not None:
            return nearest_size(ratio)
    return nearest_size(max(job.width, 1) / max(job.height, 1))


def _setting(job: ImageJob, name: str) -> Any:
    value = job.extra.get(name)
    return job.spec.options.get(name) if value is None else value


def to_request(job: ImageJob) -> dict[str, Any]:
    """The JSON body of ``POST /images/generations`` for ``job``."""
    response_format = _setting(job, "response_format")
    body: dict[str, Any] = {
        "prompt": job.prompt,
        "model": job.spec.upstream_model,
        "size": pick_size(job),
        "n": job.n,
        "response_format": response_format if response_format in RESPONSE_FORMATS else "b64_json",
    }
    if _setting(job, "style_id") is None:  # a custom style replaces style/substyle
        body["style"] = _setting(job, "style") or DEFAULT_STYLE
        substyle = _setting(job, "substyle")
        if substyle:
            body["substyle"] = substyle
    if job.negative_prompt:
        body["negative_prompt"] = job.negative_prompt
    for name in PASS_THROUGH:
        value = _setting(job, name)
        if value is not None:
            body[name] = value
    return body


def sniff_media_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:512].lstrip()
    if head.startswith(b"<svg") or (head.startswith(b"<?xml") and b"<svg" in head):
        return "image/svg+xml"
    return None


def from_response(body: Any) -> list[GeneratedImage]:
    """``data[]`` of a generations response: inline ``b64_json`` bytes or a ``url`` to download."""
    data = body.get("data") if isinstance(body, dict) else None
    images: list[GeneratedImage] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        encoded, url = item.get("b64_json"), item.get("url")
        if isinstance(encoded, str) and encoded:
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ProviderError(
                    FailureKind.HTTP, "upstream sent an image that is not valid base64", retryable=True
                ) from exc
            images.append(GeneratedImage(data=raw, media_type=sniff_media_type(raw) or "image/webp"))
        elif isinstance(url, str) and url:
            images.append(GeneratedImage(url=url))
    return images


def trim_response(body: Any) -> Any:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        return body
    data = [
        {**item, "b64_json": f"<base64 trimmed, {len(item['b64_json'])} characters>"}
        if isinstance(item, dict) and isinstance(item.get("b64_json"), str)
        else item
        for item in body["data"]
    ]
    return {**body, "data": data}


def classify_error(status: int, body: Any) -> tuple[bool, bool]:
    """(retry on another channel, the client's fault) for a Recraft error answer."""
    if isinstance(body, dict):
        text = f"{body.get('code', '')} {body.get('message', '')}".lower()
        if any(hint in text for hint in CREDIT_HINTS):
            return (True, False)
    if status in (401, 402, 403, 408, 409, 425, 429) or status >= 500:
        return (True, False)
    return (False, True)


def error_text(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "code"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
    return fallback


# --- adapter -----------------------------------------------------------------------------------


class RecraftImageAdapter(ImageAdapter):
    id: ClassVar[str] = "recraft"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        return classify_error(status, body)

    def message_of(self, body: Any, fallback: str) -> str:
        return error_text(body, fallback)

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        request = to_request(job)
        if request.get("style") in VECTOR_STYLES:
            raise ProviderError(
                FailureKind.HTTP,
                f"style {request['style']} makes SVG vector images, which this gateway does not serve",
                status=400,
                retryable=False,
                client_fault=True,
            )
        body = await self.call_json(
            "POST",
            f"{self.base_url.rstrip('/')}/images/generations",
            deadline=deadline,
            headers={"Authorization": f"Bearer {api_key}"},
            json=request,
        )
        images = from_response(body)
        if not images:
            raise generation_failed("the upstream answered without an image")
        return ImageResult(images=images, raw=trim_response(body))
