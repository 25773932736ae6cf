"""The image model table (catalog/images.yaml): specs by id, and their prices as price-book entries."""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml

from omnirelay.core.images import ImageModelSpec


def load_image_catalog() -> list[dict[str, Any]]:
    text = resources.files("omnirelay.catalog").joinpath("images.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    rows = data.get("models", [])
    if not isinstance(rows, list):
        raise ValueError("catalog images.yaml: 'models' must be a list")
    return rows


def spec_from_row(row: dict[str, Any]) -> ImageModelSpec:
    mode = str(row.get("mode", "t2i"))
    if mode not in ("t2i", "i2i"):
        raise ValueError(f"image model {row.get('id')}: mode must be t2i or i2i")
    return ImageModelSpec(
        id=str(row["id"]),
        adapter=str(row["adapter"]),
        upstream_model=str(row["upstream_model"]),
        mode=mode,
        options=dict(row.get("options") or {}),
        rules=dict(row.get("rules") or {}),
        description=str(row.get("description", "")),
        source=str(row.get("source", "")),
    )


def price_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The row as a price-book entry: USD per image is the book's per-call unit (``per_request``)."""
    entry: dict[str, Any] = {
        "id": row["id"],
        "vendor": row["adapter"],
        "category": "image",
        "tag": "Image",
        "tag_cn": "图片生成",
        "description": row.get("description", ""),
        "source": row.get("source", ""),
    }
    price = row.get("price") or {}
    if "per_image" in price:
        entry["price"] = {"per_request": price["per_image"]}
    if row.get("free"):
        entry["free"] = True
    return entry


class ImageCatalog:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self._specs = {str(row["id"]): spec_from_row(row) for row in rows}

    def get(self, model_id: str) -> ImageModelSpec | None:
        return self._specs.get(model_id)

    def all(self) -> list[ImageModelSpec]:
        return list(self._specs.values())
