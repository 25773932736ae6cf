"""First-byte latency per model from real traffic, for the model status endpoint."""

from __future__ import annotations

import time
from collections import deque

_KEEP = 50
_MAX_AGE_S = 3600.0


class LatencyBoard:
    def __init__(self) -> None:
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def record(self, model: str, seconds: float) -> None:
        samples = self._samples.get(model)
        if samples is None:
            samples = self._samples[model] = deque(maxlen=_KEEP)
        samples.append((time.monotonic(), seconds))

    def first_byte(self, model: str) -> float | None:
        """Median first-byte time over the recent samples (last hour, last 50 calls)."""
        samples = self._samples.get(model)
        if not samples:
            return None
        cutoff = time.monotonic() - _MAX_AGE_S
        recent = sorted(s for t, s in samples if t >= cutoff)
        if not recent:
            return None
        return recent[len(recent) // 2]

    def models(self) -> list[str]:
        return sorted(self._samples)
