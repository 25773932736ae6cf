"""Channels at run time and the order in which a model's candidates are tried.

A model maps to every enabled channel that lists it. Candidates are ordered by priority (lowest number
first); inside one priority tier the order is a weighted random draw without replacement, so traffic
splits by weight and a failed channel is never tried twice for one request. Channels whose breaker is
open are left out. Upstream keys of a channel are rotated round-robin.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from typing import Any

from omnirelay.core.breaker import Breaker
from omnirelay.core.redact import Redactor
from omnirelay.settings import BreakerSettings, ChannelConfig


class Channel:
    __slots__ = ("_keys", "adapter", "breaker", "config", "model_map", "name")

    def __init__(self, config: ChannelConfig, adapter: Any, breaker: Breaker) -> None:
        self.config = config
        self.name = config.name
        self.adapter = adapter
        self.breaker = breaker
        self.model_map = config.model_map()
        self._keys = itertools.cycle(config.api_keys) if config.api_keys else None

    def next_key(self) -> str:
        return next(self._keys) if self._keys is not None else ""


class Router:
    def __init__(
        self,
        breaker_settings: BreakerSettings,
        adapter_factory: Callable[[ChannelConfig], Any],
        rng: random.Random | None = None,
    ) -> None:
        self._breaker_settings = breaker_settings
        self._adapter_factory = adapter_factory
        self._rng = rng or random.Random()
        self._channels: dict[str, Channel] = {}
        self._by_model: dict[str, list[Channel]] = {}
        self.redactor = Redactor()

    def set_channels(self, configs: Iterable[ChannelConfig]) -> None:
        """Swap in a new channel set; a channel that keeps its name keeps its breaker state."""
        channels: dict[str, Channel] = {}
        for cfg in configs:
            old = self._channels.get(cfg.name)
            breaker = old.breaker if old is not None else Breaker(self._breaker_settings)
            channels[cfg.name] = Channel(cfg, self._adapter_factory(cfg), breaker)
        by_model: dict[str, list[Channel]] = {}
        for channel in channels.values():
            if not channel.config.enabled:
                continue
            for public in channel.model_map:
                by_model.setdefault(public, []).append(channel)
        for group in by_model.values():
            group.sort(key=lambda c: c.config.priority)
        self._channels = channels
        self._by_model = by_model
        self.redactor = Redactor(k for c in channels.values() for k in c.config.api_keys)

    def channel(self, name: str) -> Channel | None:
        return self._channels.get(name)

    def channels(self) -> list[Channel]:
        return list(self._channels.values())

    def has_model(self, model: str) -> bool:
        return model in self._by_model

    def models(self) -> list[str]:
        return sorted(self._by_model)

    def candidates(self, model: str) -> list[Channel]:
        group = self._by_model.get(model)
        if not group:
            return []
        live = [c for c in group if c.breaker.available()]
        if len(live) <= 1:
            return live
        ordered: list[Channel] = []
        for _, tier_iter in itertools.groupby(live, key=lambda c: c.config.priority):
            tier = list(tier_iter)
            if len(tier) > 1:
                tier.sort(key=self._draw, reverse=True)
            ordered.extend(tier)
        return ordered

    def _draw(self, channel: Channel) -> float:
        # Efraimidis-Spirakis: sorting by u**(1/w) is a weighted draw without replacement.
        weight = channel.config.weight
        if weight <= 0:
            return -1.0 + self._rng.random() * 1e-9
        return float(self._rng.random() ** (1.0 / weight))
