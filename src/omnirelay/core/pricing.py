"""Prices: the shipped catalog plus the config file's overrides, as exact integer nanos."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from omnirelay.core.usage import Usage
from omnirelay.money import cost_of_tokens, usd_to_nanos


@dataclass(slots=True, frozen=True)
class Price:
    """Nanos per 1M tokens for token parts, nanos per call for ``per_request``."""

    input: int = 0
    output: int = 0
    cached_input: int | None = None
    cache_write: int | None = None
    per_request: int = 0

    def cost(self, usage: Usage) -> int:
        cached = self.input if self.cached_input is None else self.cached_input
        write = self.input if self.cache_write is None else self.cache_write
        return (
            cost_of_tokens(usage.input_uncached, self.input)
            + cost_of_tokens(usage.input_cache_read, cached)
            + cost_of_tokens(usage.input_cache_write, write)
            + cost_of_tokens(usage.output, self.output)
            + self.per_request * max(usage.requests, 0)
        )


@dataclass(slots=True)
class ModelInfo:
    id: str
    price: Price | None
    free: bool = False
    vendor: str = ""
    category: str = "chat"
    tag: str = ""
    tag_cn: str = ""
    description: str = ""
    content_length: int | None = None
    max_completion_tokens: int | None = None
    supported_tools: bool | None = None
    reasoning: bool = False
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def billable(self) -> bool:
        return self.free or self.price is not None

    @property
    def is_llm(self) -> bool:
        return self.category == "chat"


_PRICE_FIELDS = ("input", "output", "cached_input", "cache_write", "per_request")


def parse_price(raw: dict[str, Any]) -> Price:
    unknown = set(raw) - set(_PRICE_FIELDS)
    if unknown:
        raise ValueError(f"unknown price fields: {sorted(unknown)}")
    values: dict[str, int | None] = {}
    for name in _PRICE_FIELDS:
        if name in raw and raw[name] is not None:
            nanos = usd_to_nanos(raw[name])
            if nanos < 0:
                raise ValueError(f"price {name} is negative")
            values[name] = nanos
    return Price(
        input=values.get("input") or 0,
        output=values.get("output") or 0,
        cached_input=values.get("cached_input"),
        cache_write=values.get("cache_write"),
        per_request=values.get("per_request") or 0,
    )


def model_from_entry(entry: dict[str, Any]) -> ModelInfo:
    model_id = entry.get("id")
    if not isinstance(model_id, str) or not model_id:
        raise ValueError("model entry without an id")
    raw_price = entry.get("price")
    price = parse_price(raw_price) if isinstance(raw_price, dict) else None
    known = {
        "id",
        "price",
        "free",
        "vendor",
        "category",
        "tag",
        "tag_cn",
        "description",
        "content_length",
        "max_completion_tokens",
        "supported_tools",
        "reasoning",
        "source",
    }
    return ModelInfo(
        id=model_id,
        price=price,
        free=bool(entry.get("free", False)),
        vendor=str(entry.get("vendor", "")),
        category=str(entry.get("category", "chat")),
        tag=str(entry.get("tag", "")),
        tag_cn=str(entry.get("tag_cn", "")),
        description=str(entry.get("description", "")),
        content_length=entry.get("content_length"),
        max_completion_tokens=entry.get("max_completion_tokens"),
        supported_tools=entry.get("supported_tools"),
        reasoning=bool(entry.get("reasoning", False)),
        source=str(entry.get("source", "")),
        extra={k: v for k, v in entry.items() if k not in known},
    )


def load_shipped_catalog() -> list[dict[str, Any]]:
    text = resources.files("omnirelay.catalog").joinpath("models.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    models = data.get("models", [])
    if not isinstance(models, list):
        raise ValueError("catalog models.yaml: 'models' must be a list")
    return models


class PriceBook:
    """Model id -> ModelInfo: the catalog with config entries merged over it field by field."""

    def __init__(self, catalog: list[dict[str, Any]], overrides: list[dict[str, Any]]) -> None:
        merged: dict[str, dict[str, Any]] = {}
        for entry in catalog:
            merged[str(entry["id"])] = dict(entry)
        for entry in overrides:
            base = merged.get(str(entry.get("id")), {})
            combined = {**base, **entry}
            # A config price clears a catalog ``free: true`` unless the config entry sets ``free`` itself.
            if entry.get("price") is not None and "free" not in entry:
                combined.pop("free", None)
            merged[str(entry.get("id"))] = combined
        self._models = {mid: model_from_entry(e) for mid, e in merged.items()}

    def get(self, model_id: str) -> ModelInfo | None:
        return self._models.get(model_id)

    def all(self) -> list[ModelInfo]:
        return list(self._models.values())
