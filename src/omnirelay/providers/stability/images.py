"""Stability AI image generation (platform.stability.ai REST API).

The catalog row's ``options.api`` picks the route:

- ``v1``: ``POST /v1/generation/{engine}/text-to-image``, a JSON body, ``samples`` images per call.
- ``core`` / ``ultra``: ``POST /v2beta/stable-image/generate/{core|ultra}``, multipart/form-data.
- ``sd3``: ``POST /v2beta/stable-image/generate/sd3``, multipart/form-data, text-to-image or
  image-to-image (``mode``), the model in the ``model`` field.

Every route answers synchronously. The v2beta routes make one image per call, so ``n`` images are
``n`` calls (run side by side, at most ``MAX_PARALLEL`` at once) whose images are concatenated.
The mapping is pure functions (``to_v1_request``, ``to_v2_form``, ``from_v1_response``,
``from_v2_response``, ``classify_error``); the adapter class only sends the calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from omnirelay.core.images import GeneratedImage, ImageInput, ImageJob, ImageModelSpec, ImageResult
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed
from omnirelay.providers.openai_compat.errors import classify_status, error_message

APIS = ("v1", "core", "ultra", "sd3")
V2_APIS = frozenset({"core", "ultra", "sd3"})

# The only dimensions the SDXL 1.0 engines accept (the v1 API answers 400 for any other).
SDXL_SIZES: tuple[tuple[int, int], ...] = (
    (1024, 1024),
    (1152, 896),
    (896, 1152),
    (1216, 832),
    (832, 1216),
    (1344, 768),
    (768, 1344),
    (1536, 640),
    (640, 1536),
)
# Other v1 engines take multiples of 64 in this range.
V1_MIN_SIDE, V1_MAX_SIDE = 320, 1536

V2_RATIOS = ("16:9", "1:1", "21:9", "2:3", "3:2", "4:5", "5:4", "9:16", "9:21")
V2_FORMATS: dict[str, tuple[str, ...]] = {
    "core": ("png", "jpeg", "webp"),
    "ultra": ("png", "jpeg", "webp"),
    "sd3": ("png", "jpeg"),
}
DEFAULT_STRENGTH = 0.7
SEED_LIMIT = 4_294_967_295  # v2beta seeds are 0..4294967294; 0 means "random"

# Client extras (ImageJob.extra) passed through as vendor fields, per route.
V1_EXTRAS = ("cfg_scale", "steps", "sampler", "style_preset", "clip_guidance_preset")
V2_EXTRAS: dict[str, tuple[str, ...]] = {
    "core": ("style_preset",),
    "ultra": (),
    "sd3": ("cfg_scale", "style_preset"),
}
MAX_PARALLEL = 4


# --- request mapping --------------------------------------------------------------------------------


def api_of(spec: ImageModelSpec) -> str:
    """The route a catalog row uses: ``options.api``, else guessed from the upstream model."""
    api = spec.options.get("api")
    if api is None:
        model = spec.upstream_model
        api = model if model in ("core", "ultra") else "sd3" if model.startswith("sd3") else "v1"
    if api not in APIS:
        raise ValueError(f"stability: unknown options.api {api!r} for {spec.id!r}; known: {', '.join(APIS)}")
    return str(api)


def ratio_value(ratio: str) -> float | None:
    """``"16:9"`` -> 1.777...; None when the text is not a ratio of two positive numbers."""
    left, sep, right = ratio.partition(":")
    try:
        w, h = float(left), float(right)
    except ValueError:
        return None
    return w / h if sep and w > 0 and h > 0 else None


def nearest_ratio(target: float, choices: Sequence[str]) -> str:
    """The choice closest to ``target`` (compared on a log scale, so 2:1 and 1:2 are equally far)."""
    return min(choices, key=lambda c: abs(math.log((ratio_value(c) or 1.0) / target)))


def job_ratio(job: ImageJob) -> float:
    """The width/height ratio the client asked for: its aspect_ratio, else its width and height."""
    if job.aspect_ratio:
        value = ratio_value(job.aspect_ratio)
        if value is not None:
            return value
    if job.width > 0 and job.height > 0:
        return job.width / job.height
    return 1.0


def v2_aspect_ratio(job: ImageJob) -> str:
    if job.aspect_ratio in V2_RATIOS:
        return job.aspect_ratio
    return nearest_ratio(job_ratio(job), V2_RATIOS)


def is_sdxl(engine: str) -> bool:
    return "xl" in engine and "1024" in engine


def v1_size(engine: str, job: ImageJob) -> tuple[int, int]:
    """Dimensions the v1 engine accepts: SDXL's fixed list, else multiples of 64 in range."""
    if is_sdxl(engine):
        target = job_ratio(job)
        return min(SDXL_SIZES, key=lambda s: abs(math.log(s[0] / s[1] / target)))
    width, height = float(job.width), float(job.height)
    ratio = ratio_value(job.aspect_ratio) if job.aspect_ratio else None
    if ratio is not None:
        # A ratio wins over the width and height: keep their area, take the ratio.
        area = max(width * height, 1.0)
        width, height = math.sqrt(area * ratio), math.sqrt(area / ratio)

    def snap(side: float) -> int:
        return int(min(max(round(side / 64) * 64, V1_MIN_SIDE), V1_MAX_SIDE))

    return snap(width), snap(height)


def _extras(job: ImageJob, names: Sequence[str]) -> dict[str, Any]:
    return {name: job.extra[name] for name in names if job.extra.get(name) is not None}


def to_v1_request(job: ImageJob) -> dict[str, Any]:
    """The JSON body of ``POST /v1/generation/{engine}/text-to-image``."""
    width, height = v1_size(job.spec.upstream_model, job)
    prompts: list[dict[str, Any]] = [{"text": job.prompt, "weight": 1}]
    if job.negative_prompt:
        prompts.append({"text": job.negative_prompt, "weight": -1})
    body: dict[str, Any] = {"text_prompts": prompts, "width": width, "height": height, "samples": job.n}
    if job.seed is not None:
        body["seed"] = job.seed
    body.update(_extras(job, V1_EXTRAS))
    return body


@dataclass(slots=True, frozen=True)
class V2Form:
    """One v2beta call: its path, its text fields in order, the input image file, the output format."""

    path: str
    fields: list[tuple[str, str]]
    image: ImageInput | None
    output_format: str

    @property
    def media_type(self) -> str:
        return f"image/{self.output_format}"

    def field(self, name: str) -> str | None:
        return next((value for key, value in self.fields if key == name), None)


def v2_output_format(api: str, requested: str) -> str:
    fmt = (requested or "png").lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    return fmt if fmt in V2_FORMATS[api] else "png"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_v2_form(job: ImageJob, api: str, index: int = 0) -> V2Form:
    """The multipart fields of the ``index``-th v2beta call for ``job`` (``n`` calls make ``n`` images).

    A fixed seed is offset by the call's index, so repeated calls do not return the same image.
    """
    if api not in V2_APIS:
        raise ValueError(f"not a v2beta route: {api!r}")
    fields: list[tuple[str, str]] = [("prompt", job.prompt)]
    image: ImageInput | None = None
    model = job.spec.upstream_model
    if api == "sd3":
        fields.append(("model", model))
        if job.spec.requires_image:
            image = job.image
            if image is None:
                raise ValueError(f"{job.spec.id} needs an input image")
            strength = job.extra.get("strength")
            strength = DEFAULT_STRENGTH if strength is None else strength
            fields += [("mode", "image-to-image"), ("strength", _text(strength))]
        else:
            fields += [("mode", "text-to-image"), ("aspect_ratio", v2_aspect_ratio(job))]
    else:
        fields.append(("aspect_ratio", v2_aspect_ratio(job)))
    # The turbo SD3 models take no negative prompt.
    if job.negative_prompt and not (api == "sd3" and model.endswith("-turbo")):
        fields.append(("negative_prompt", job.negative_prompt))
    if job.seed is not None:
        fields.append(("seed", str((job.seed + index) % SEED_LIMIT) if job.seed else "0"))
    output_format = v2_output_format(api, job.output_format)
    fields.append(("output_format", output_format))
    fields += [(name, _text(value)) for name, value in _extras(job, V2_EXTRAS[api]).items()]
    return V2Form(f"/v2beta/stable-image/generate/{api}", fields, image, output_format)


def build_form(form: V2Form) -> aiohttp.FormData:
    """The multipart body (always multipart, even with no file: the v2beta routes require it)."""
    data = aiohttp.FormData(default_to_multipart=True)
    for name, value in form.fields:
        data.add_field(name, value)
    if form.image is not None:
        data.add_field(
            "image",
            form.image.data,
            filename=f"image.{form.image.extension}",
            content_type=form.image.media_type,
        )
    return data


# --- response mapping -------------------------------------------------------------------------------


def malformed(message: str) -> ProviderError:
    """A 2xx answer that cannot be used: the upstream's fault, another channel may do better."""
    return ProviderError(FailureKind.HTTP, message, retryable=True)


def _decode(value: Any) -> bytes:
    if not isinstance(value, str) or not value:
        raise malformed("stability answered without image data")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise malformed("stability answered with image data that is not base64") from exc


def from_v1_response(body: Any) -> list[GeneratedImage]:
    """The SUCCESS artifacts of a v1 answer; raises when there are none (moderated or failed)."""
    artifacts = body.get("artifacts") if isinstance(body, dict) else None
    if not isinstance(artifacts, list):
        raise malformed("stability answered without artifacts")
    images: list[GeneratedImage] = []
    filtered = failed = 0
    for artifact in artifacts:
        reason = artifact.get("finishReason") if isinstance(artifact, dict) else None
        if reason == "CONTENT_FILTERED":
            filtered += 1
        elif reason == "SUCCESS":
            images.append(GeneratedImage(data=_decode(artifact.get("base64")), media_type="image/png"))
        else:
            failed += 1
    if images:
        return images
    if filtered:
        raise generation_failed(
            "stability filtered the image (finishReason CONTENT_FILTERED)",
            moderated=True,
        )
    raise generation_failed(f"stability returned no image ({failed} artifact(s) ended in ERROR)")


def from_v2_response(body: Any, media_type: str) -> GeneratedImage:
    """The image of a v2beta JSON answer; raises when it was filtered or failed."""
    if not isinstance(body, dict):
        raise malformed("stability answered with a body that is not an object")
    reason = body.get("finish_reason")
    if reason == "CONTENT_FILTERED":
        raise generation_failed(
            "stability filtered the image (finish_reason CONTENT_FILTERED)", moderated=True
        )
    if reason not in (None, "SUCCESS"):
        raise generation_failed(f"stability finished without an image (finish_reason {reason})")
    return GeneratedImage(data=_decode(body.get("image")), media_type=media_type)


def trim_raw(body: Any) -> Any:
    """The answer with its base64 image data replaced by a short note (for ``ImageResult.raw``)."""
    if isinstance(body, dict):
        out: dict[str, Any] = {}
        for key, value in body.items():
            if key in ("base64", "image") and isinstance(value, str):
                out[key] = f"<{len(value)} base64 characters>"
            else:
                out[key] = trim_raw(value)
        return out
    if isinstance(body, list):
        return [trim_raw(item) for item in body]
    return body


# --- errors -----------------------------------------------------------------------------------------


def is_content_moderation(status: int | None, body: Any) -> bool:
    return status == 403 and isinstance(body, dict) and body.get("name") == "content_moderation"


def classify_error(status: int, body: Any) -> tuple[bool, bool]:
    """(retry elsewhere, client's fault) for a Stability error answer.

    403 ``content_moderation`` is the prompt's fault; any other 403 (v1 ``permission_denied``) is the
    channel's. A 404 is an engine or route this channel's account lacks, not a client mistake.
    """
    if is_content_moderation(status, body):
        return (False, True)
    if status == 404:
        return (True, False)
    return classify_status(status, body if isinstance(body, dict) else None)


def error_text(body: Any, fallback: str) -> str:
    """The message of a v1 ``{id, name, message}`` or v2beta ``{id, name, errors: [...]}`` body."""
    if isinstance(body, dict):
        errors = body.get("errors")
        name = body.get("name")
        prefix = f"{name}: " if isinstance(name, str) and name else ""
        if isinstance(errors, list) and errors:
            return prefix + "; ".join(str(e) for e in errors)
        if isinstance(body.get("message"), str):
            return prefix + str(body["message"])
    return error_message(body if isinstance(body, dict) else None, fallback)


# --- the adapter ------------------------------------------------------------------------------------


class StabilityImageAdapter(ImageAdapter):
    id: ClassVar[str] = "stability"

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        return classify_error(status, body)

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
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        if api == "v1":
            return await self._v1(job, headers, deadline)
        return await self._v2(job, api, headers, deadline)

    async def _v1(self, job: ImageJob, headers: dict[str, str], deadline: float) -> ImageResult:
        path = f"/v1/generation/{job.spec.upstream_model}/text-to-image"
        body = await self.call_json(
            "POST", self.url(path), deadline=deadline, headers=headers, json=to_v1_request(job)
        )
        return ImageResult(images=from_v1_response(body), raw=trim_raw(body))

    async def _v2(self, job: ImageJob, api: str, headers: dict[str, str], deadline: float) -> ImageResult:
        try:
            forms = [to_v2_form(job, api, index) for index in range(max(1, job.n))]
        except ValueError as exc:
            raise ProviderError(FailureKind.GENERATION, str(exc), retryable=False, client_fault=True) from exc
        gate = asyncio.Semaphore(MAX_PARALLEL)

        async def one(form: V2Form) -> tuple[GeneratedImage, Any]:
            async with gate:
                body = await self._v2_call(form, headers, deadline)
            return from_v2_response(body, form.media_type), trim_raw(body)

        outcomes = await asyncio.gather(*(one(form) for form in forms), return_exceptions=True)
        images: list[GeneratedImage] = []
        raws: list[Any] = []
        errors: list[ProviderError] = []
        for outcome in outcomes:
            if isinstance(outcome, ProviderError):
                errors.append(outcome)
                raws.append({"error": {"status": outcome.status, "message": outcome.message}})
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                images.append(outcome[0])
                raws.append(outcome[1])
        if not images:
            raise errors[0]
        # Some calls of a multi-image job may fail: the images that were made are still returned.
        return ImageResult(images=images, raw=raws[0] if len(raws) == 1 else raws)

    async def _v2_call(self, form: V2Form, headers: dict[str, str], deadline: float) -> Any:
        try:
            return await self.call_json(
                "POST", self.url(form.path), deadline=deadline, headers=headers, data=build_form(form)
            )
        except ProviderError as exc:
            if not is_content_moderation(exc.status, exc.body):
                raise
            moderated = generation_failed(f"stability refused the request ({exc.message})", moderated=True)
            moderated.status, moderated.body = exc.status, exc.body
            raise moderated from exc
