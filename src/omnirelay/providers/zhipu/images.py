"""Zhipu BigModel (CogView): ``POST {base_url}/images/generations``, synchronous, Bearer API key.

The channel's ``base_url`` is the v4 API root, e.g. ``https://open.bigmodel.cn/api/paas/v4``.
The API makes one image per call, so a job with ``n > 1`` is sent as n calls at once.
Zhipu errors are ``{"error": {"code": "<numeric string>", "message": ...}}`` and are classified by
code first (``classify_error``). See docs/providers/zhipu.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, ClassVar

from omnirelay.core.images import GeneratedImage, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed

MIN_SIDE, MAX_SIDE, STEP, MAX_PIXELS = 512, 2048, 16, 2**21
MODERATION_CODE = "1301"  # the input or the output was judged unsafe
RETRY = (True, False)
CLIENT = (False, True)
# code -> (retry on another channel, the client's fault). Unlisted codes fall back to the status.
CODE_RULES: dict[str, tuple[bool, bool]] = {
    # authentication of the channel's key
    **dict.fromkeys(("1000", "1001", "1002", "1003", "1004"), RETRY),
    # the channel's account: inactive, missing, locked, in arrears, not accessible
    **dict.fromkeys(("1100", "1110", "1111", "1112", "1113", "1120", "1121"), RETRY),
    # the model is missing, not permitted or offline for this account / API
    **dict.fromkeys(("1211", "1220", "1221", "1222"), RETRY),
    # the request's parameters, and content that was refused
    **dict.fromkeys(("1200", "1210", "1212", "1213", "1214", "1215", "1261", MODERATION_CODE), CLIENT),
    # a network error inside the platform
    "1234": RETRY,
    # concurrency / frequency / daily limits and platform overload
    **dict.fromkeys(("1302", "1303", "1304", "1305"), RETRY),
    "500": RETRY,
}
PASS_THROUGH = ("quality", "user_id", "watermark_enabled")


# --- pure mapping ------------------------------------------------------------------------------


def custom_size(width: int, height: int) -> str:
    """A CogView size for width x height: sides 512..2048, multiples of 16, at most 2^21 pixels."""
    w, h = float(max(width, 1)), float(max(height, 1))
    if w * h > MAX_PIXELS:  # scale down keeping the ratio
        scale = (MAX_PIXELS / (w * h)) ** 0.5
        w, h = w * scale, h * scale

    def side(value: float) -> int:
        return int(min(max(value, MIN_SIDE), MAX_SIDE) // STEP * STEP)

    sw, sh = side(w), side(h)
    while sw * sh > MAX_PIXELS:  # clamping the short side up can push the area over again
        if sw >= sh:
            sw -= STEP
        else:
            sh -= STEP
    return f"{sw}x{sh}"


def pick_size(job: ImageJob) -> str:
    return job.size or custom_size(job.width, job.height)


def to_request(job: ImageJob) -> dict[str, Any]:
    """The JSON body of one ``POST /images/generations`` call for ``job``."""
    body: dict[str, Any] = {"model": job.spec.upstream_model, "prompt": job.prompt, "size": pick_size(job)}
    for name in PASS_THROUGH:
        value = job.extra.get(name, job.spec.options.get(name))
        if value is not None:
            body[name] = value
    return body


def from_response(body: Any) -> list[GeneratedImage]:
    data = body.get("data") if isinstance(body, dict) else None
    return [
        GeneratedImage(url=item["url"])
        for item in (data if isinstance(data, list) else [])
        if isinstance(item, dict) and isinstance(item.get("url"), str) and item["url"]
    ]


def merge_responses(bodies: list[Any]) -> Any:
    """One ``raw`` for several calls: the first answer with every call's ``data`` and ``content_filter``."""
    if len(bodies) == 1:
        return bodies[0]
    first = bodies[0] if isinstance(bodies[0], dict) else {}
    merged = {**first, "data": [i for b in bodies if isinstance(b, dict) for i in b.get("data") or []]}
    filters = [f for b in bodies if isinstance(b, dict) for f in b.get("content_filter") or []]
    if filters:
        merged["content_filter"] = filters
    return merged


def error_code(body: Mapping[str, Any] | None) -> str | None:
    error = body.get("error") if isinstance(body, Mapping) else None
    code = error.get("code") if isinstance(error, Mapping) else None
    return str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None


def classify_error(status: int, body: Any) -> tuple[bool, bool]:
    code = error_code(body if isinstance(body, dict) else None)
    if code in CODE_RULES:
        return CODE_RULES[code]
    if status in (401, 403, 408, 429, 434) or status >= 500:
        return RETRY
    return CLIENT


# --- adapter -----------------------------------------------------------------------------------


async def gather_all(calls: Sequence[Awaitable[Any]]) -> list[Any]:
    """Run the calls together; on the first failure cancel the rest and raise that failure."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class ZhipuImageAdapter(ImageAdapter):
    id: ClassVar[str] = "zhipu"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        return classify_error(status, body)

    async def _generate_one(self, job: ImageJob, api_key: str, deadline: float) -> Any:
        try:
            return await self.call_json(
                "POST",
                f"{self.base_url.rstrip('/')}/images/generations",
                deadline=deadline,
                headers={"Authorization": f"Bearer {api_key}"},
                json=to_request(job),
            )
        except ProviderError as exc:
            if exc.kind is FailureKind.HTTP and error_code(exc.body) == MODERATION_CODE:
                refused = generation_failed(exc.message, moderated=True)
                refused.body = exc.body
                raise refused from exc
            raise

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        bodies = await gather_all([self._generate_one(job, api_key, deadline) for _ in range(max(job.n, 1))])
        images = [image for body in bodies for image in from_response(body)]
        raw = merge_responses(bodies)
        if not images:
            filtered = bool(isinstance(raw, dict) and raw.get("content_filter"))
            raise generation_failed(
                "the upstream filtered the content" if filtered else "the upstream answered without an image",
                moderated=filtered,
            )
        return ImageResult(images=images, raw=raw)
