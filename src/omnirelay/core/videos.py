"""Provider-neutral video generation: the job and result types, the model table, the adapter base.

The 302 video V2 routes parse a request into a ``VideoJob``; the video task handler sends it to a
channel's adapter (``submit``), polls it (``check``) and stores the finished video. Every vendor
adapter subclasses ``VideoAdapter`` (an ``ImageAdapter`` with the same HTTP call, timeout and error
classification machinery, but no image capability) and keeps its wire mapping and error tables as
data in its own module.

The model table is ``catalog/videos.yaml`` (see ``load_video_catalog``); model names are matched the
302 way: case-insensitive, ``-`` and ``_`` interchangeable, a legacy ``-t2v`` / ``-i2v`` / ``-v2v``
suffix tolerated.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, ClassVar

import yaml

from omnirelay.core.images import ImageInput
from omnirelay.errors import UnprocessableEntity
from omnirelay.money import usd_str, usd_to_nanos
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter, generation_failed

MODES = ("t2v", "i2v", "v2v")
MODE_NAMES = {"t2v": "text-to-video", "i2v": "image-to-video", "v2v": "video-to-video"}
_LEGACY_SUFFIXES = ("-t2v", "-i2v", "-v2v")
# Fields of the 302 create body the gateway reads itself; everything else is a model-specific extra.
CORE_FIELDS = frozenset(
    {
        "model",
        "prompt",
        "negative_prompt",
        "image",
        "image[]",
        "end_image",
        "video",
        "duration",
        "resolution",
        "aspect_ratio",
        "fps",
    }
)
# Parameters the catalog may declare that are inputs, not values to check against options.
_INPUT_PARAMETERS = frozenset({"prompt", "negative_prompt", "image", "end_image", "video"})


# --- the model table ------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class VideoModelSpec:
    """One row of catalog/videos.yaml."""

    id: str
    adapter: str
    upstream_model: str
    display_name: str
    capabilities: dict[str, bool]
    default_duration: int
    parameters: tuple[dict[str, Any], ...] = ()
    options: dict[str, Any] = field(default_factory=dict)  # adapter settings that are facts of the model
    price: dict[str, Any] = field(default_factory=dict)  # {per_video} or {per_second}, USD strings
    aliases: tuple[str, ...] = ()
    provider: str = ""
    provider_en: str = ""
    provider_jp: str = ""
    description: str = ""
    description_en: str = ""
    description_jp: str = ""
    source: str = ""

    def supports(self, mode: str) -> bool:
        return bool(self.capabilities.get(mode, False))

    def parameter(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.parameters if p.get("name") == name), None)

    def options_of(self, name: str) -> list[Any] | None:
        param = self.parameter(name)
        options = param.get("options") if param else None
        return list(options) if isinstance(options, list) else None

    def default_of(self, name: str) -> Any:
        param = self.parameter(name)
        return param.get("default") if param else None


def normalize_model_name(name: str) -> str:
    """``"Kling_V2.1_Master"`` -> ``"kling-v2.1-master"`` (no suffix removed; see ``VideoCatalog``)."""
    return name.strip().lower().replace("_", "-")


def strip_legacy_suffix(name: str) -> str:
    for suffix in _LEGACY_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_video_catalog() -> list[dict[str, Any]]:
    """The rows of catalog/videos.yaml, each with its vendor's display names merged in."""
    text = resources.files("omnirelay.catalog").joinpath("videos.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    rows = data.get("models", [])
    providers = data.get("providers", {}) or {}
    if not isinstance(rows, list) or not isinstance(providers, dict):
        raise ValueError("catalog videos.yaml: 'models' must be a list and 'providers' a map")
    merged = []
    for row in rows:
        names = providers.get(row.get("adapter"), {}) or {}
        merged.append(
            {**{k: names[k] for k in ("provider", "provider_en", "provider_jp") if k in names}, **row}
        )
    return merged


def spec_from_row(row: dict[str, Any]) -> VideoModelSpec:
    caps = dict(row.get("capabilities") or {})
    if set(caps) - set(MODES) or not any(caps.values()):
        raise ValueError(f"video model {row.get('id')}: capabilities must name t2v, i2v, v2v, one true")
    duration = row.get("default_duration")
    if not isinstance(duration, int) or isinstance(duration, bool) or duration <= 0:
        raise ValueError(f"video model {row.get('id')}: default_duration must be a positive integer")
    price = dict(row.get("price") or {})
    if set(price) - {"per_video", "per_second"} or len(price) > 1:
        raise ValueError(f"video model {row.get('id')}: price is {{per_video}} or {{per_second}}")
    return VideoModelSpec(
        id=str(row["id"]),
        adapter=str(row["adapter"]),
        upstream_model=str(row["upstream_model"]),
        display_name=str(row.get("display_name") or row["id"]),
        capabilities={mode: bool(caps.get(mode, False)) for mode in MODES},
        default_duration=duration,
        parameters=tuple(dict(p) for p in row.get("parameters") or ()),
        options=dict(row.get("options") or {}),
        price=price,
        aliases=tuple(str(a) for a in row.get("aliases") or ()),
        provider=str(row.get("provider") or row["adapter"]),
        provider_en=str(row.get("provider_en") or row.get("provider") or row["adapter"]),
        provider_jp=str(row.get("provider_jp") or row.get("provider_en") or row["adapter"]),
        description=str(row.get("description") or row.get("description_en") or ""),
        description_en=str(row.get("description_en") or row.get("description") or ""),
        description_jp=str(row.get("description_jp") or row.get("description_en") or ""),
        source=str(row.get("source", "")),
    )


def price_per_video(row: dict[str, Any]) -> str | None:
    """USD per video at the model's default duration (exact decimal string), or None if unpriced."""
    price = row.get("price") or {}
    if "per_video" in price:
        return str(price["per_video"])
    if "per_second" in price:
        return usd_str(usd_to_nanos(str(price["per_second"])) * int(row["default_duration"]))
    return None


def video_price_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The row as a price-book entry: ``per_request`` is USD per video at the default duration."""
    entry: dict[str, Any] = {
        "id": row["id"],
        "vendor": row["adapter"],
        "category": "video",
        "tag": "Video",
        "tag_cn": "视频生成",
        "description": row.get("description_en") or row.get("description", ""),
        "source": row.get("source", ""),
    }
    per_video = price_per_video(row)
    if per_video is not None:
        entry["price"] = {"per_request": per_video}
    if row.get("free"):
        entry["free"] = True
    return entry


def billing_units(spec: VideoModelSpec, duration: int | None) -> int:
    """How many default-length videos a job is billed as: 1 at the default duration, 2 for twice it."""
    if duration is None or duration <= spec.default_duration:
        return 1
    return math.ceil(duration / spec.default_duration)


class VideoCatalog:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._specs: dict[str, VideoModelSpec] = {}
        self._names: dict[str, str] = {}
        for row in rows:
            spec = spec_from_row(row)
            self._specs[spec.id] = spec
            for name in (spec.id, *spec.aliases):
                self._names.setdefault(normalize_model_name(name), spec.id)

    def get(self, name: str) -> VideoModelSpec | None:
        """The model a client's name means: exact first, then without a legacy -t2v/-i2v/-v2v suffix."""
        key = normalize_model_name(name)
        found = self._names.get(key) or self._names.get(strip_legacy_suffix(key))
        return self._specs[found] if found else None

    def by_upstream(self, adapter: str, upstream_model: str) -> VideoModelSpec | None:
        """The first row of ``adapter`` whose vendor model id is ``upstream_model`` (vendor formats)."""
        for spec in self._specs.values():
            if spec.adapter == adapter and spec.upstream_model == upstream_model:
                return spec
        return None

    def all(self) -> list[VideoModelSpec]:
        return list(self._specs.values())


@functools.cache
def default_catalog() -> VideoCatalog:
    """The shipped table, loaded once per process."""
    return VideoCatalog(load_video_catalog())


# --- request checks -------------------------------------------------------------------------------


def _plain(value: Any) -> str:
    """A value as it compares with a catalog option: ``True``/"true", ``5``/"5"/5.0, "1080P"/"1080p"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def parse_duration(value: Any) -> int | None:
    """``5``, ``"5"``, ``"5s"`` or ``5.0`` -> 5; None when absent; 422 when not a whole number of seconds."""
    if value is None or value == "":
        return None
    text = value.strip().removesuffix("s") if isinstance(value, str) else value
    number = _number(text)
    if number is None or number <= 0 or (isinstance(number, float) and not number.is_integer()):
        raise UnprocessableEntity("'duration' must be a whole number of seconds", param="duration")
    return int(number)


def check_parameter(spec: VideoModelSpec, name: str, value: Any) -> Any:
    """The value as the model's row spells it (an option, or a number in range); 422 if it is not one.

    A parameter the row does not declare is passed through unchecked.
    """
    param = spec.parameter(name)
    if param is None or name in _INPUT_PARAMETERS:
        return value
    options = param.get("options")
    if isinstance(options, list):
        wanted = _plain(value)
        for option in options:
            if _plain(option) == wanted:
                return option
        shown = ", ".join(_plain(option) for option in options)
        raise UnprocessableEntity(f"'{name}' must be one of {shown} for the model `{spec.id}`", param=name)
    bounds = param.get("range")
    if isinstance(bounds, dict):
        number = _number(value)
        low, high = bounds.get("min"), bounds.get("max")
        if number is None or (low is not None and number < low) or (high is not None and number > high):
            raise UnprocessableEntity(
                f"'{name}' must be a number between {low} and {high} for the model `{spec.id}`", param=name
            )
        return number
    return value


def check_mode(spec: VideoModelSpec, mode: str, *, end_image: bool) -> None:
    """422 unless the model does ``mode`` (and takes a last frame when one is given)."""
    if not spec.supports(mode):
        does = [m for m in MODES if spec.supports(m)]
        hints = {"t2v": "send only a prompt", "i2v": "send `image`", "v2v": "send `video`"}
        offer = "; ".join(f"{MODE_NAMES[m]} ({hints[m]})" for m in does)
        raise UnprocessableEntity(
            f"The model `{spec.id}` does not do {MODE_NAMES.get(mode, mode)}; it does {offer}.",
            param="image" if mode != "t2v" else "model",
        )
    if end_image and spec.parameter("end_image") is None:
        raise UnprocessableEntity(
            f"The model `{spec.id}` does not take a last frame (`end_image`).", param="end_image"
        )


# --- jobs and results -----------------------------------------------------------------------------


def infer_mode(*, image: bool, end_image: bool, video: bool) -> str:
    """302's rule: an image (first or last frame) makes it i2v, a video v2v, else t2v."""
    if video:
        return "v2v"
    if image or end_image:
        return "i2v"
    return "t2v"


@dataclass(slots=True)
class VideoJob:
    """What the client asked for, checked against the model's row.

    ``image_url`` / ``end_image_url`` are where the gateway hosts the input images (for vendors that
    only take URLs); ``video_url`` is the client's own (vetted) URL of the source video.
    ``extra`` holds the client's model-specific fields, passed through where the vendor has them.
    """

    spec: VideoModelSpec
    prompt: str
    mode: str = "t2v"
    negative_prompt: str | None = None
    image: ImageInput | None = None
    end_image: ImageInput | None = None
    image_url: str | None = None
    end_image_url: str | None = None
    video_url: str | None = None
    duration: int | None = None
    resolution: str | None = None
    aspect_ratio: str | None = None
    fps: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream_model(self) -> str:
        return self.spec.upstream_model

    @property
    def seconds(self) -> int:
        return self.duration or self.spec.default_duration

    def image_ref(self) -> str | None:
        """The first frame as a URL a vendor can fetch: the hosted copy, else a data URL."""
        if self.image is None:
            return None
        return self.image_url or self.image.data_url()

    def end_image_ref(self) -> str | None:
        if self.end_image is None:
            return None
        return self.end_image_url or self.end_image.data_url()


@dataclass(slots=True)
class VideoResult:
    """A finished job: the video's URL at the vendor (trusted: it came from the channel), or bytes."""

    url: str | None
    raw: Any  # the vendor's final task payload, inline data trimmed
    data: bytes | None = None
    upstream_task_id: str | None = None
    cover_url: str | None = None
    duration: float | None = None


_BASE64 = re.compile(r"[A-Za-z0-9+/=_-]+")


def trim_inline(value: Any, limit: int = 100) -> Any:
    """The value with long data URLs and bare base64 strings (echoed inputs) replaced by a short note."""
    if isinstance(value, str):
        if len(value) >= limit and value.startswith("data:"):
            return f"{value.split(',', 1)[0]},<{len(value)} characters trimmed>"
        if len(value) > 1000 and _BASE64.fullmatch(value):
            return f"<{len(value)} base64 characters trimmed>"
        return value
    if isinstance(value, list):
        return [trim_inline(item, limit) for item in value]
    if isinstance(value, dict):
        return {key: trim_inline(item, limit) for key, item in value.items()}
    return value


# --- vendor error tables --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ErrorRule:
    """What a vendor's error code means: the HTTP status it amounts to, and how to route it.

    ``retryable``: another channel may succeed (the channel's key, balance, rate limit, outage);
    ``client_fault``: the request itself is wrong; ``moderated``: a content check refused it.
    """

    status: int
    retryable: bool
    client_fault: bool
    moderated: bool = False


CHANNEL = ErrorRule(401, True, False)  # the channel's key or account: try another channel
RATE = ErrorRule(429, True, False)
CLIENT = ErrorRule(400, False, True)
MODERATED = ErrorRule(422, False, True, moderated=True)
SERVER = ErrorRule(500, True, False)
UNKNOWN = ErrorRule(502, True, False)


def rule_error(rule: ErrorRule, message: str, body: Any = None) -> ProviderError:
    """The ProviderError a rule stands for (a moderation refusal is a generation failure)."""
    if rule.moderated:
        return generation_failed(message, moderated=True)
    return ProviderError(
        FailureKind.HTTP,
        message,
        status=rule.status,
        body=body if isinstance(body, dict) else None,
        retryable=rule.retryable,
        client_fault=rule.client_fault,
    )


def marker_in(text: str, markers: tuple[str, ...]) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in markers)


MODERATION_MARKERS = (
    "moderat",
    "nsfw",
    "flagged",
    "safety",
    "sensitive",
    "inappropriate",
    "policy",
    "risk control",
    "violat",
    "audit",
)


class VideoAdapter(ImageAdapter):
    """Base of every video adapter: ``submit`` a job, ``check`` it; errors classified by a table.

    Subclasses set ``id`` (== folder == channel ``provider``) and implement ``error_rule`` (the
    vendor's code table, from a status and an error body), ``submit`` and ``check``.
    """

    capabilities: ClassVar[frozenset[Capability]] = frozenset()  # not an image channel
    handles_video: ClassVar[bool] = True
    poll_interval_s: float = 5.0
    poll_max_interval_s: float = 15.0

    def error_rule(self, status: int, body: Any) -> ErrorRule | None:
        """The vendor's rule for an error answer, or None to classify by the HTTP status alone."""
        return None

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        rule = self.error_rule(status, body)
        if rule is not None:
            return rule.retryable, rule.client_fault
        return super().classify(status, body)

    async def request(
        self,
        method: str,
        url: str,
        *,
        deadline: float,
        headers: dict[str, str],
        json: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """``call_json``; an error answer whose rule is a moderation refusal becomes one."""
        try:
            return await self.call_json(
                method, url, deadline=deadline, headers=headers, json=json, params=params
            )
        except ProviderError as exc:
            if exc.kind is FailureKind.HTTP and exc.status is not None:
                rule = self.error_rule(exc.status, exc.body)
                if rule is not None and rule.moderated:
                    raise generation_failed(exc.message, moderated=True) from exc
            raise

    async def submit(self, job: VideoJob, api_key: str, deadline: float) -> str:
        """Create the vendor's job once; returns its id (what ``check`` takes)."""
        raise NotImplementedError

    async def check(self, task_id: str, api_key: str, deadline: float) -> VideoResult | None:
        """One poll: the result when done, None while in progress; raises generation_failed on failure."""
        raise NotImplementedError


def missing_id(vendor: str) -> ProviderError:
    return ProviderError(FailureKind.HTTP, f"{vendor} accepted the job without a task id", retryable=True)


def not_json_object(vendor: str) -> ProviderError:
    return ProviderError(
        FailureKind.HTTP, f"{vendor} answered with something that is not a JSON object", retryable=True
    )


def str_field(body: Any, *path: str) -> str | None:
    """``body[path[0]][path[1]]...`` when that is a non-empty string (or a number, as a string)."""
    value = body
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) and value else None
