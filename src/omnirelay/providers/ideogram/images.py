"""Ideogram image generation (developer.ideogram.ai API reference).

Two routes, picked by the catalog row:

- legacy (``V_1`` .. ``V_2A_TURBO``): ``POST /generate``, JSON ``{"image_request": {...}}`` with the
  model and an ``ASPECT_W_H`` aspect ratio.
- Ideogram 3.0 (``options.api == "v3"``): ``POST /v1/ideogram-v3/generate``, multipart/form-data with
  a ``WxH`` aspect ratio and ``rendering_speed`` (an option of the row: it decides the price).

Both answer synchronously with ``{"created", "data": [{"url", "prompt", "resolution",
"is_image_safe", "seed", ...}]}``; the URLs expire, so the gateway downloads them at once. Auth is
the ``Api-Key`` header. Mapping is pure functions (``to_legacy_request``, ``to_v3_fields``,
``from_response``, ``is_safety_rejection``); the adapter class only sends the call.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp

from omnirelay.core.images import GeneratedImage, ImageJob, ImageModelSpec, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed
from omnirelay.providers.openai_compat.errors import error_message

LEGACY_PATH = "/generate"
V3_PATH = "/v1/ideogram-v3/generate"

LEGACY_MODELS = ("V_1", "V_1_TURBO", "V_2", "V_2_TURBO", "V_2A", "V_2A_TURBO")
LEGACY_RATIOS = ("1:1", "10:16", "16:10", "9:16", "16:9", "3:2", "2:3", "4:3", "3:4", "1:3", "3:1")
V3_RATIOS = (
    "1:1",
    "1:3",
    "3:1",
    "1:2",
    "2:1",
    "9:16",
    "16:9",
    "10:16",
    "16:10",
    "2:3",
    "3:2",
    "3:4",
    "4:3",
    "4:5",
    "5:4",
)
# The reference: negative_prompt only for V_1, V_1_TURBO, V_2 and V_2_TURBO; style_type from V_2 on.
NEGATIVE_PROMPT_MODELS = frozenset({"V_1", "V_1_TURBO", "V_2", "V_2_TURBO"})
NO_STYLE_TYPE_MODELS = frozenset({"V_1", "V_1_TURBO"})
MAGIC_VALUES = ("AUTO", "ON", "OFF")
DEFAULT_RENDERING_SPEED = "DEFAULT"


# --- request mapping --------------------------------------------------------------------------------


def api_of(spec: ImageModelSpec) -> str:
    """``"v3"`` for Ideogram 3.0 rows, ``"legacy"`` for the ``/generate`` models."""
    api = spec.options.get("api")
    if api == "v3" or (api is None and spec.upstream_model.upper() in ("V_3", "V3")):
        return "v3"
    if api in (None, "legacy"):
        return "legacy"
    raise ValueError(f"ideogram: unknown options.api {api!r} for {spec.id!r}; known: legacy, v3")


def ratio_value(ratio: str) -> float | None:
    """``"16:9"`` (or ``"16x9"``) -> 1.777...; None when the text is not a ratio of positive numbers."""
    left, sep, right = ratio.replace("x", ":").partition(":")
    try:
        w, h = float(left), float(right)
    except ValueError:
        return None
    return w / h if sep and w > 0 and h > 0 else None


def pick_ratio(job: ImageJob, choices: Sequence[str]) -> str:
    """The job's aspect ratio if offered, else the offered one nearest to it (or to width/height)."""
    if job.aspect_ratio is not None and job.aspect_ratio in choices:
        return job.aspect_ratio
    target = ratio_value(job.aspect_ratio) if job.aspect_ratio else None
    if target is None:
        target = job.width / job.height if job.width > 0 and job.height > 0 else 1.0
    return min(choices, key=lambda c: abs(math.log((ratio_value(c) or 1.0) / target)))


def legacy_aspect_ratio(job: ImageJob) -> str:
    """``"16:9"`` -> ``"ASPECT_16_9"``."""
    return "ASPECT_" + pick_ratio(job, LEGACY_RATIOS).replace(":", "_")


def v3_aspect_ratio(job: ImageJob) -> str:
    """``"16:9"`` -> ``"16x9"``."""
    return pick_ratio(job, V3_RATIOS).replace(":", "x")


def _magic(job: ImageJob, *names: str) -> str | None:
    """The magic-prompt setting from the client's extras (either spelling), else the row's options."""
    for source in (job.extra, job.spec.options):
        for name in names:
            value = source.get(name)
            if isinstance(value, bool):
                return "ON" if value else "OFF"
            if isinstance(value, str) and value:
                return value.upper()
    return None


def _upper(value: Any) -> str | None:
    return value.upper() if isinstance(value, str) and value else None


def to_legacy_request(job: ImageJob) -> dict[str, Any]:
    """The JSON body of ``POST /generate``."""
    model = job.spec.upstream_model
    request: dict[str, Any] = {
        "prompt": job.prompt,
        "model": model,
        "aspect_ratio": legacy_aspect_ratio(job),
        "num_images": job.n,
    }
    if job.negative_prompt and model in NEGATIVE_PROMPT_MODELS:
        request["negative_prompt"] = job.negative_prompt
    if job.seed is not None:
        request["seed"] = job.seed
    magic = _magic(job, "magic_prompt_option", "magic_prompt")
    if magic is not None:
        request["magic_prompt_option"] = magic
    style_type = _upper(job.extra.get("style_type"))
    if style_type is not None and model not in NO_STYLE_TYPE_MODELS:
        request["style_type"] = style_type
    return {"image_request": request}


def to_v3_fields(job: ImageJob) -> list[tuple[str, str]]:
    """The multipart fields of ``POST /v1/ideogram-v3/generate``, in order."""
    speed = str(job.spec.options.get("rendering_speed") or DEFAULT_RENDERING_SPEED)
    fields = [
        ("prompt", job.prompt),
        ("aspect_ratio", v3_aspect_ratio(job)),
        ("rendering_speed", speed),
        ("num_images", str(job.n)),
    ]
    if job.negative_prompt:
        fields.append(("negative_prompt", job.negative_prompt))
    if job.seed is not None:
        fields.append(("seed", str(job.seed)))
    magic = _magic(job, "magic_prompt", "magic_prompt_option")
    if magic is not None:
        fields.append(("magic_prompt", magic))
    for name in ("style_type", "style_preset"):
        value = _upper(job.extra.get(name))
        if value is not None:
            fields.append((name, value))
    return fields


def build_form(fields: Sequence[tuple[str, str]]) -> aiohttp.FormData:
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in fields:
        data.add_field(name, value)
    return data


# --- response mapping -------------------------------------------------------------------------------


def from_response(body: Any) -> list[GeneratedImage]:
    """The safe images' URLs; raises a moderation error when every image failed the safety check."""
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise ProviderError(FailureKind.HTTP, "ideogram answered without a data list", retryable=True)
    images: list[GeneratedImage] = []
    unsafe = 0
    for item in data:
        if not isinstance(item, dict):
            continue
        url = item.get("url")
        if item.get("is_image_safe") is False:
            unsafe += 1
        elif isinstance(url, str) and url:
            images.append(GeneratedImage(url=url))
    if images:
        return images
    if unsafe:
        raise generation_failed("ideogram withheld the image: it failed the safety check", moderated=True)
    raise ProviderError(FailureKind.HTTP, "ideogram answered without an image URL", retryable=True)


# --- errors -----------------------------------------------------------------------------------------


def error_text(body: Any, fallback: str) -> str:
    """The message of an Ideogram error: ``{"detail": "..."}``, or a validation list of ``{"msg"}``."""
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, str) and detail:
            return detail
        if isinstance(detail, list) and detail:
            parts = [str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail]
            return "; ".join(parts)
    return error_message(body if isinstance(body, dict) else None, fallback)


def is_safety_rejection(status: int | None, body: Any) -> bool:
    """A 422 that says the prompt (or input) failed Ideogram's safety check."""
    return status == 422 and "safety" in error_text(body, "").lower()


# --- the adapter ------------------------------------------------------------------------------------


class IdeogramImageAdapter(ImageAdapter):
    id: ClassVar[str] = "ideogram"

    def message_of(self, body: Any, fallback: str) -> str:
        return error_text(body, fallback)

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        deadline = time.monotonic() + timeout_s
        try:
            api = api_of(job.spec)
        except ValueError as exc:
            raise generation_failed(str(exc)) from exc
        headers = {"Api-Key": api_key, "Accept": "application/json"}
        try:
            if api == "v3":
                form = build_form(to_v3_fields(job))
                body = await self.call_json(
                    "POST", self.url(V3_PATH), deadline=deadline, headers=headers, data=form
                )
            else:
                body = await self.call_json(
                    "POST",
                    self.url(LEGACY_PATH),
                    deadline=deadline,
                    headers=headers,
                    json=to_legacy_request(job),
                )
        except ProviderError as exc:
            if not is_safety_rejection(exc.status, exc.body):
                raise
            moderated = generation_failed(f"ideogram refused the prompt ({exc.message})", moderated=True)
            moderated.status, moderated.body = exc.status, exc.body
            raise moderated from exc
        return ImageResult(images=from_response(body), raw=body)
