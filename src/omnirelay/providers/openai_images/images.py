"""OpenAI Images API: ``POST /images/generations``, ``/images/edits`` and ``/images/variations``.

The channel's ``base_url`` is the API root including the version, e.g. ``https://api.openai.com/v1``.
Mapping is done by the pure functions below (``generation_request``, ``edit_parts``,
``variation_parts``, ``images_from_response``, ``trim_response``); the adapter only sends them.
See docs/providers/openai_images.md for the field mapping and the error table.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
import time
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageInput, ImageJob, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed

# Model families: what each accepts differs (sizes, n, response_format, extra fields).
DALLE2 = "dall-e-2"
DALLE3 = "dall-e-3"
GPT_IMAGE = "gpt-image"

# Sizes the known models accept; models not listed here get the asked size unchanged.
SIZES: dict[str, tuple[str, ...]] = {
    DALLE2: ("256x256", "512x512", "1024x1024"),
    DALLE3: ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image-1": ("1024x1024", "1536x1024", "1024x1536"),
}
# Client extras forwarded per family (anything else in ``job.extra`` is not sent: OpenAI rejects
# unknown parameters with a 400).
GENERATION_EXTRAS: dict[str, tuple[str, ...]] = {
    DALLE2: ("user",),
    DALLE3: ("quality", "style", "user"),
    GPT_IMAGE: ("quality", "background", "output_compression", "moderation", "user"),
}
EDIT_EXTRAS: dict[str, tuple[str, ...]] = {
    DALLE2: ("user",),
    DALLE3: (),
    GPT_IMAGE: ("quality", "background", "output_compression", "input_fidelity", "user"),
}
OUTPUT_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "webp": "webp"}
RESPONSE_FORMATS = ("b64_json", "url")

# error.code values meaning the prompt or input image was refused by OpenAI's safety system.
MODERATION_CODES = frozenset(
    {"content_policy_violation", "moderation_blocked", "image_content_policy_violation"}
)
# error.code values that are the channel's problem even under a 400 (try another channel).
CHANNEL_CODES: dict[str, tuple[bool, bool]] = {
    "billing_hard_limit_reached": (True, False),
    "insufficient_quota": (True, False),
    "invalid_api_key": (True, False),
    "account_deactivated": (True, False),
}

# A form part: a text field, or a file given as an ImageInput.
Part = tuple[str, str | ImageInput]


# --- pure mapping ------------------------------------------------------------------------------


def model_family(model: str) -> str:
    name = model.lower()
    if name.startswith(DALLE2):
        return DALLE2
    if name.startswith(DALLE3):
        return DALLE3
    return GPT_IMAGE


def allowed_sizes(model: str) -> tuple[str, ...] | None:
    name = model.lower()
    if name in SIZES:
        return SIZES[name]
    family = model_family(name)
    if family in (DALLE2, DALLE3):
        return SIZES[family]
    if name.startswith("gpt-image-1"):
        return SIZES["gpt-image-1"]
    return None


def parse_size(size: str) -> tuple[int, int] | None:
    width, sep, height = size.lower().partition("x")
    if not sep or not width.strip().isdigit() or not height.strip().isdigit():
        return None
    w, h = int(width), int(height)
    return (w, h) if w > 0 and h > 0 else None


def nearest_size(width: int, height: int, allowed: Iterable[str]) -> str:
    """The allowed "WxH" closest in aspect ratio to width x height, then closest in area."""
    wanted_ratio = math.log(max(width, 1) / max(height, 1))
    wanted_area = math.log(max(width, 1) * max(height, 1))
    best: tuple[float, float, str] | None = None
    for size in allowed:
        dims = parse_size(size)
        if dims is None:
            continue
        key = (
            round(abs(math.log(dims[0] / dims[1]) - wanted_ratio), 6),
            abs(math.log(dims[0] * dims[1]) - wanted_area),
            size,
        )
        if best is None or key < best:
            best = key
    if best is None:
        raise ValueError("no usable size in the allowed list")
    return best[2]


def pick_size(job: ImageJob) -> str:
    """``job.size`` (or width x height) snapped to a size the model accepts.

    gpt-image models also take "auto". Models we do not know get the asked size unchanged.
    """
    model = job.spec.upstream_model
    wanted = job.size or f"{job.width}x{job.height}"
    if wanted == "auto" and model_family(model) == GPT_IMAGE:
        return wanted
    allowed = allowed_sizes(model)
    if allowed is None or wanted in allowed:
        return wanted
    width, height = parse_size(wanted) or (job.width, job.height)
    return nearest_size(width, height, allowed)


def map_quality(value: Any, family: str) -> str | None:
    """302.AI clients send OpenAI's quality words of either generation; map them to the model's."""
    if not isinstance(value, str) or not value:
        return None
    word = value.lower()
    if family == DALLE3:
        return "hd" if word in ("hd", "high") else "standard"
    if family == GPT_IMAGE:
        return {"hd": "high", "standard": "medium"}.get(word, word)
    return None  # dall-e-2 has one quality


def response_format(job: ImageJob) -> str:
    """dall-e only: inline base64 unless the model options or the client ask for URLs."""
    for source in (job.extra, job.spec.options):
        value = source.get("response_format")
        if value in RESPONSE_FORMATS:
            return str(value)
    return "b64_json"


def output_format(job: ImageJob) -> str:
    return OUTPUT_FORMATS.get(job.output_format.lower(), "png")


def _extras(job: ImageJob, family: str, names: Iterable[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = job.extra.get(name, job.spec.options.get(name))
        if value is None:
            continue
        if name == "quality":
            value = map_quality(value, family)
            if value is None:
                continue
        out[name] = value
    return out


def generation_request(job: ImageJob, *, n: int | None = None) -> dict[str, Any]:
    """The JSON body of ``POST /images/generations`` for ``job`` (``n`` overrides ``job.n``)."""
    model = job.spec.upstream_model
    family = model_family(model)
    body: dict[str, Any] = {
        "model": model,
        "prompt": job.prompt,
        "n": job.n if n is None else n,
        "size": pick_size(job),
    }
    if family == GPT_IMAGE:
        body["output_format"] = output_format(job)
    else:
        body["response_format"] = response_format(job)
    body.update(_extras(job, family, GENERATION_EXTRAS[family]))
    return body


def as_png(image: ImageInput, *, alpha: bool = False) -> ImageInput:
    """dall-e-2 takes PNG only: other formats are re-encoded (RGBA when ``alpha``), PNG is kept as is."""
    if image.media_type == "image/png":
        return image
    with Image.open(io.BytesIO(image.data)) as opened:
        converted = opened.convert("RGBA" if alpha or "A" in opened.getbands() else "RGB")
    buffer = io.BytesIO()
    converted.save(buffer, format="PNG")
    return ImageInput(buffer.getvalue(), "image/png", converted.width, converted.height)


def edit_parts(job: ImageJob) -> list[Part]:
    """The multipart parts of ``POST /images/edits`` (dall-e-2: one image; gpt-image: up to 16)."""
    if not job.images:
        raise ValueError("an edit needs an input image")
    model = job.spec.upstream_model
    family = model_family(model)
    parts: list[Part] = []
    if family == GPT_IMAGE and len(job.images) > 1:
        parts.extend(("image[]", image) for image in job.images)
    elif family == DALLE2:
        parts.append(("image", as_png(job.images[0], alpha=True)))
    else:
        parts.append(("image", job.images[0]))
    if job.mask is not None:
        parts.append(("mask", as_png(job.mask, alpha=True) if family == DALLE2 else job.mask))
    parts += [("prompt", job.prompt), ("model", model), ("n", str(job.n)), ("size", pick_size(job))]
    if family == GPT_IMAGE:
        parts.append(("output_format", output_format(job)))
    else:
        parts.append(("response_format", response_format(job)))
    parts += [(k, str(v)) for k, v in _extras(job, family, EDIT_EXTRAS[family]).items()]
    return parts


def variation_parts(job: ImageJob) -> list[Part]:
    """The multipart parts of ``POST /images/variations`` (dall-e-2 only upstream)."""
    if not job.images:
        raise ValueError("a variation needs an input image")
    image = job.images[0]
    parts: list[Part] = [
        ("image", as_png(image) if model_family(job.spec.upstream_model) == DALLE2 else image),
        ("model", job.spec.upstream_model),
        ("n", str(job.n)),
        ("size", pick_size(job)),
        ("response_format", response_format(job)),
    ]
    user = job.extra.get("user")
    if isinstance(user, str) and user:
        parts.append(("user", user))
    return parts


def sniff_media_type(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return None


def images_from_response(body: Any, *, media_type: str = "image/png") -> list[GeneratedImage]:
    """``data[]`` of an images response: decoded ``b64_json`` bytes, or ``url`` to download."""
    data = body.get("data") if isinstance(body, dict) else None
    images: list[GeneratedImage] = []
    for item in data if isinstance(data, list) else []:
        if not isinstance(item, dict):
            continue
        encoded = item.get("b64_json")
        url = item.get("url")
        if isinstance(encoded, str) and encoded:
            try:
                raw = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ProviderError(
                    FailureKind.HTTP, "upstream sent an image that is not valid base64", retryable=True
                ) from exc
            images.append(GeneratedImage(data=raw, media_type=sniff_media_type(raw) or media_type))
        elif isinstance(url, str) and url:
            images.append(GeneratedImage(url=url))
    return images


def trim_response(body: Any) -> Any:
    """The response with every ``b64_json`` replaced by a short note (for ``ImageResult.raw``)."""
    if not isinstance(body, dict):
        return body
    out = dict(body)
    data = body.get("data")
    if isinstance(data, list):
        out["data"] = [_trim_item(item) for item in data]
    return out


def _trim_item(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("b64_json"), str):
        return {**item, "b64_json": f"<base64 trimmed, {len(item['b64_json'])} characters>"}
    return item


def merge_responses(bodies: list[Any]) -> Any:
    """One response out of several calls (dall-e-3 with n > 1): the first, with every ``data[]``."""
    if len(bodies) == 1:
        return bodies[0]
    first = bodies[0] if isinstance(bodies[0], dict) else {}
    data = [item for body in bodies if isinstance(body, dict) for item in body.get("data") or []]
    return {**first, "data": data}


def is_moderation(body: Mapping[str, Any] | None) -> bool:
    error = body.get("error") if isinstance(body, Mapping) else None
    return isinstance(error, dict) and error.get("code") in MODERATION_CODES


def media_type_for(job: ImageJob) -> str:
    if model_family(job.spec.upstream_model) == GPT_IMAGE:
        return {"jpeg": "image/jpeg", "webp": "image/webp"}.get(output_format(job), "image/png")
    return "image/png"


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


def _form(parts: list[Part]) -> aiohttp.FormData:
    form = aiohttp.FormData()
    for index, (name, value) in enumerate(parts):
        if isinstance(value, ImageInput):
            form.add_field(
                name,
                value.data,
                filename=f"{name.strip('[]')}{index}.{value.extension}",
                content_type=value.media_type,
            )
        else:
            form.add_field(name, value)
    return form


def _require_image(job: ImageJob, what: str) -> None:
    if not job.images:
        raise ProviderError(
            FailureKind.HTTP, f"{what} needs an input image", status=400, retryable=False, client_fault=True
        )


class OpenAIImagesAdapter(ImageAdapter):
    id: ClassVar[str] = "openai_images"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        error = body.get("error") if isinstance(body, dict) else None
        code = error.get("code") if isinstance(error, dict) else None
        if isinstance(code, str) and code in CHANNEL_CODES:
            return CHANNEL_CODES[code]
        return super().classify(status, body)

    def _url(self, path: str) -> str:
        return f"{self.base_url.rstrip('/')}/{path}"

    async def _post(
        self, path: str, api_key: str, deadline: float, *, json: Any = None, parts: list[Part] | None = None
    ) -> Any:
        try:
            return await self.call_json(
                "POST",
                self._url(path),
                deadline=deadline,
                headers={"Authorization": f"Bearer {api_key}"},
                json=json,
                data=_form(parts) if parts is not None else None,
            )
        except ProviderError as exc:
            if exc.kind is FailureKind.HTTP and is_moderation(exc.body):
                refused = generation_failed(exc.message, moderated=True)
                refused.body = exc.body
                raise refused from exc
            raise

    @staticmethod
    def _result(bodies: list[Any], job: ImageJob) -> ImageResult:
        media_type = media_type_for(job)
        images = [image for body in bodies for image in images_from_response(body, media_type=media_type)]
        if not images:
            raise generation_failed("the upstream answered without an image")
        return ImageResult(images=images, raw=trim_response(merge_responses(bodies)))

    async def generate_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        family = model_family(job.spec.upstream_model)
        if job.images and family != DALLE3:  # dall-e-3 has no edit endpoint: its input images are ignored
            return await self.edit_image(job, api_key, timeout_s)
        deadline = time.monotonic() + timeout_s
        if family == DALLE3 and job.n > 1:  # dall-e-3 takes n=1 only: one call per image, together
            calls = [
                self._post("images/generations", api_key, deadline, json=generation_request(job, n=1))
                for _ in range(job.n)
            ]
            bodies = await gather_all(calls)
        else:
            bodies = [await self._post("images/generations", api_key, deadline, json=generation_request(job))]
        return self._result(bodies, job)

    async def edit_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        _require_image(job, "an image edit")
        deadline = time.monotonic() + timeout_s
        body = await self._post("images/edits", api_key, deadline, parts=edit_parts(job))
        return self._result([body], job)

    async def vary_image(self, job: ImageJob, api_key: str, timeout_s: float) -> ImageResult:
        _require_image(job, "an image variation")
        deadline = time.monotonic() + timeout_s
        body = await self._post("images/variations", api_key, deadline, parts=variation_parts(job))
        return self._result([body], job)
