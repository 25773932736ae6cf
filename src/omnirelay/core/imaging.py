"""Image generation as every image route runs it: price, reserve, route, store the files, settle.

Routes parse their own dialect into an ``ImageJob`` (``build_job`` applies the model's rules) and
render the ``ImageOutcome``; the money, routing and file handling live here once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from PIL import Image

from omnirelay.core.accounts import KeyState
from omnirelay.core.billing import Billing, CallRecord
from omnirelay.core.dispatch import AttemptLog, dispatch
from omnirelay.core.image_catalog import ImageCatalog
from omnirelay.core.image_rules import apply_rules
from omnirelay.core.images import GeneratedImage, ImageInput, ImageJob, ImageModelSpec, ImageResult
from omnirelay.core.pricing import ModelInfo, PriceBook
from omnirelay.core.router import Channel, Router
from omnirelay.core.usage import Usage
from omnirelay.errors import (
    GatewayError,
    GenerationFailed,
    ModelNotFound,
    PermissionDenied,
    UnprocessableEntity,
    UpstreamError,
)
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.settings import RoutingSettings
from omnirelay.store.files import FileStore

MAX_RESULT_BYTES = 64 * 1024 * 1024
RESULT_TIMEOUT_S = 60.0
_FORMATS = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}


@dataclass(slots=True)
class StoredImage:
    key: str
    url: str
    media_type: str
    data: bytes


@dataclass(slots=True)
class ImageOutcome:
    images: list[StoredImage]
    raw: Any
    upstream_task_id: str | None
    polls: int
    channel: str | None
    cost: int
    started: float
    finished: float

    @property
    def execution_time(self) -> str:
        return f"{self.finished - self.started:.2f}"


Operation = Callable[[Any, ImageJob, str, float], Awaitable[ImageResult]]


async def _generate(adapter: Any, job: ImageJob, key: str, timeout_s: float) -> ImageResult:
    result: ImageResult = await adapter.generate_image(job, key, timeout_s)
    return result


class ImageService:
    def __init__(
        self,
        *,
        catalog: ImageCatalog,
        prices: PriceBook,
        router: Router,
        routing: RoutingSettings,
        billing: Billing,
        files: Callable[[], FileStore],
        http: Callable[[], aiohttp.ClientSession],
    ) -> None:
        self.catalog = catalog
        self._prices = prices
        self._router = router
        self._routing = routing
        self._billing = billing
        self._files = files
        self._http = http

    # --- before the call ------------------------------------------------------------------------

    def model(self, model_id: str) -> tuple[ImageModelSpec, ModelInfo]:
        spec = self.catalog.get(model_id)
        if spec is None or not self._router.has_model(model_id):
            raise ModelNotFound(
                f"The image model `{model_id}` does not exist or is not served here.", param="model"
            )
        info = self._prices.get(model_id)
        if info is None or not info.billable:
            raise PermissionDenied(
                f"The model `{model_id}` has no price on this gateway, so it cannot be used.", param="model"
            )
        return spec, info

    @staticmethod
    def build_job(
        spec: ImageModelSpec,
        *,
        prompt: str,
        width: int | None = None,
        height: int | None = None,
        size: str | None = None,
        aspect_ratio: str | None = None,
        negative_prompt: str | None = None,
        output_format: str = "png",
        n: int = 1,
        images: list[ImageInput] | None = None,
        mask: ImageInput | None = None,
        seed: int | None = None,
        extra: dict[str, Any] | None = None,
        require_image: bool | None = None,
    ) -> ImageJob:
        inputs = images or []
        if (spec.requires_image if require_image is None else require_image) and not inputs:
            raise UnprocessableEntity(
                f"The model `{spec.id}` needs an input image: send `image`.", param="image"
            )
        geometry = apply_rules(spec, width=width, height=height, size=size, aspect_ratio=aspect_ratio)
        return ImageJob(
            spec=spec,
            prompt=prompt,
            width=geometry.width,
            height=geometry.height,
            size=geometry.size,
            aspect_ratio=geometry.aspect_ratio,
            negative_prompt=negative_prompt,
            output_format=output_format,
            n=n,
            images=inputs,
            mask=mask,
            seed=seed,
            extra=dict(extra or {}),
        )

    # --- the call -------------------------------------------------------------------------------

    async def run(
        self,
        key: KeyState,
        job: ImageJob,
        info: ModelInfo,
        rec: CallRecord,
        *,
        public_base: str,
        operation: Operation = _generate,
    ) -> ImageOutcome:
        """Reserve n images, route, download and store every result, settle for what was made."""
        price = info.price
        hold = self._billing.reserve(key, price.cost(Usage(requests=job.n)) if price is not None else 0)
        attempts = AttemptLog()
        started = time.time()
        try:

            async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> ImageResult:
                if Capability.IMAGE not in getattr(channel.adapter, "capabilities", frozenset()):
                    raise ProviderError(
                        FailureKind.CONNECT, f"channel {channel.name} cannot generate images", retryable=True
                    )
                spec = job.spec
                if upstream_model != spec.id:  # the channel maps the public id to its own name
                    spec = dataclasses.replace(spec, upstream_model=upstream_model)
                return await operation(
                    channel.adapter, dataclasses.replace(job, spec=spec), channel.next_key(), timeout_s
                )

            try:
                _, result = await dispatch(self._router, self._routing, job.spec.id, attempt, attempts)
            except ProviderError as exc:  # pragma: no cover - dispatch converts every ProviderError
                raise UpstreamError(exc.message) from exc
            stored = await self.store_results(result.images, public_base)
            if not stored:
                raise GenerationFailed("The upstream finished without returning an image.")
        except BaseException as exc:
            rec.attempts, rec.channel, rec.status = attempts.attempts, attempts.channel, "error"
            if isinstance(exc, GatewayError):
                rec.http_status, rec.error = exc.http_status, exc.message[:500]
            elif isinstance(exc, asyncio.CancelledError):
                rec.status, rec.http_status, rec.error = "cancelled", 499, "client disconnected"
            else:
                rec.http_status, rec.error = 500, type(exc).__name__
            if hold.open:
                self._billing.settle(hold, None, None, rec)
            raise
        rec.attempts, rec.channel = attempts.attempts, attempts.channel
        cost = self._billing.settle(hold, price, Usage(requests=len(stored)), rec)
        return ImageOutcome(
            images=stored,
            raw=result.raw,
            upstream_task_id=result.upstream_task_id,
            polls=result.polls,
            channel=attempts.channel,
            cost=cost,
            started=started,
            finished=time.time(),
        )

    async def store_results(self, images: list[GeneratedImage], public_base: str) -> list[StoredImage]:
        """Download or decode each result, check it is an image, and store it under a public URL."""
        files = self._files()
        stored = []
        for image in images:
            data = image.data if image.data is not None else await self._download(image.url or "")
            media_type = _check_image(data)
            key = await files.put(data, media_type)
            stored.append(StoredImage(key, f"{public_base.rstrip('/')}/files/{key}", media_type, data))
        return stored

    async def _download(self, url: str) -> bytes:
        """Fetch a result from the upstream's own URL (trusted: it came from the configured channel)."""
        if not url.startswith(("http://", "https://")):
            raise UpstreamError("The upstream returned an image URL that is not http(s).")
        timeout = aiohttp.ClientTimeout(total=RESULT_TIMEOUT_S)
        try:
            async with self._http().get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise UpstreamError(f"Downloading the generated image failed (HTTP {resp.status}).")
                chunks = []
                size = 0
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    if size > MAX_RESULT_BYTES:
                        raise UpstreamError("The generated image is larger than the gateway accepts.")
                    chunks.append(chunk)
                return b"".join(chunks)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise UpstreamError(f"Downloading the generated image failed ({type(exc).__name__}).") from exc


def _check_image(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            img.verify()
    except Exception as exc:
        raise UpstreamError("The upstream returned data that is not an image.") from exc
    media_type = _FORMATS.get(fmt)
    if media_type is None:
        raise UpstreamError(f"The upstream returned an unsupported image format ({fmt or 'unknown'}).")
    return media_type
