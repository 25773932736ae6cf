"""The image models' parameter rules, applied exactly as the 302 model table states them.

A rule set is data (catalog/images.yaml, ``rules``):

- ``size: {choices: [...], default}``: the requested ``width``x``height`` (or an explicit ``size``)
  is kept when it is one of the choices, else the default is used (DALL·E, CogView-4).
- ``aspect_ratio: {choices: [...], default}``: the requested ratio is kept when listed, else the
  default (Stability, Flux ultra, Ideogram, Luma, Google, MiniMax).
- ``dimensions: {min, max, default}``: each of width and height is kept when inside [min, max],
  else replaced by the default (Doubao).

i2i models ignore ``aspect_ratio`` and require an input image.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omnirelay.core.images import ImageModelSpec

DEFAULT_SIDE = 1024


@dataclass(slots=True, frozen=True)
class Geometry:
    width: int
    height: int
    size: str | None
    aspect_ratio: str | None


def parse_size(value: str) -> tuple[int, int] | None:
    width, sep, height = value.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        return None
    return int(width), int(height)


def apply_rules(
    spec: ImageModelSpec,
    *,
    width: int | None,
    height: int | None,
    size: str | None,
    aspect_ratio: str | None,
) -> Geometry:
    """Normalise the geometry a client asked for to what ``spec`` accepts; pure and total."""
    rules: dict[str, Any] = spec.rules or {}
    if size and (width is None or height is None):
        parsed = parse_size(size)
        if parsed is not None:
            width, height = parsed
    w = width if width is not None else DEFAULT_SIDE
    h = height if height is not None else DEFAULT_SIDE
    out_size: str | None = None
    ratio = None if spec.requires_image else aspect_ratio

    size_rule = rules.get("size")
    if size_rule:
        wanted = f"{w}x{h}"
        out_size = wanted if wanted in size_rule["choices"] else str(size_rule["default"])
        parsed = parse_size(out_size)
        assert parsed is not None
        w, h = parsed

    dims = rules.get("dimensions")
    if dims:
        low, high, default = int(dims["min"]), int(dims["max"]), int(dims["default"])
        w = w if low <= w <= high else default
        h = h if low <= h <= high else default

    ratio_rule = rules.get("aspect_ratio")
    if ratio_rule and not spec.requires_image:
        ratio = ratio if ratio in ratio_rule["choices"] else str(ratio_rule["default"])

    return Geometry(width=w, height=h, size=out_size, aspect_ratio=ratio)
