"""Provider-neutral image generation types, shared by every image route and adapter.

Routes parse their dialect into an ``ImageJob``; an adapter turns the job into its vendor's calls
and returns an ``ImageResult``; the route stores the images and renders its own dialect. The same
result type serves the V1 route, the V2 task object (sync now, async with the task engine) and the
OpenAI-format routes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True, frozen=True)
class ImageInput:
    """An input image, already fetched or decoded and checked: raw bytes plus its media type."""

    data: bytes
    media_type: str  # e.g. "image/png"
    width: int = 0
    height: int = 0

    @property
    def extension(self) -> str:
        return self.media_type.split("/")[-1].replace("jpeg", "jpg")

    def data_url(self) -> str:
        import base64

        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


@dataclass(slots=True)
class ImageModelSpec:
    """One row of catalog/images.yaml: which adapter serves a public model id, and how."""

    id: str
    adapter: str
    upstream_model: str
    mode: str = "t2i"  # "t2i" or "i2i" (i2i requires an input image and ignores aspect_ratio)
    options: dict[str, Any] = field(default_factory=dict)  # adapter-specific fixed settings
    rules: dict[str, Any] = field(default_factory=dict)  # parameter rules (core/image_rules.py)
    description: str = ""
    source: str = ""

    @property
    def requires_image(self) -> bool:
        return self.mode == "i2i"


@dataclass(slots=True)
class ImageJob:
    """What the client asked for, after the model's parameter rules were applied.

    ``size`` is "WxH" when the model's rule picks from a size list; ``width``/``height`` are always
    set (defaults 1024). ``aspect_ratio`` is None when the model takes no ratio (i2i models).
    ``extra`` holds the client's other fields (vendor extras), passed through where the adapter can.
    """

    spec: ImageModelSpec
    prompt: str
    width: int = 1024
    height: int = 1024
    size: str | None = None
    aspect_ratio: str | None = None
    negative_prompt: str | None = None
    output_format: str = "png"
    n: int = 1
    images: list[ImageInput] = field(default_factory=list)
    mask: ImageInput | None = None
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image(self) -> ImageInput | None:
        return self.images[0] if self.images else None


@dataclass(slots=True, frozen=True)
class GeneratedImage:
    """One output: either bytes the upstream sent inline, or a URL the gateway must download."""

    url: str | None = None
    data: bytes | None = None
    media_type: str | None = None


@dataclass(slots=True)
class ImageResult:
    images: list[GeneratedImage]
    raw: Any  # the upstream's own final response (the ``data`` of the V1 route), base64 trimmed
    upstream_task_id: str | None = None
    polls: int = 0
