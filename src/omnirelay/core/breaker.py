"""Per-channel circuit breaker: error rate over a window, cooldown, one half-open probe.

Closed: traffic flows and outcomes are counted over the last ``window`` calls. Once at least
``min_requests`` calls are counted and the failure share reaches ``error_rate``, the breaker opens
for ``cooldown_s``. Then one probe is let through (half-open): success closes it with a fresh window,
failure opens it again with the cooldown doubled (up to ``max_cooldown_s``). A breaker never
disables a channel for good.
"""

from __future__ import annotations

import enum
import time
from collections import deque

from omnirelay.settings import BreakerSettings


class State(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Breaker:
    __slots__ = ("_cfg", "_cooldown", "_outcomes", "_probe_in_flight", "opened_at", "state")

    def __init__(self, cfg: BreakerSettings) -> None:
        self._cfg = cfg
        self._outcomes: deque[bool] = deque(maxlen=cfg.window)
        self._cooldown = cfg.cooldown_s
        self._probe_in_flight = False
        self.state = State.CLOSED
        self.opened_at = 0.0

    def available(self, now: float | None = None) -> bool:
        if self.state is State.CLOSED:
            return True
        now = time.monotonic() if now is None else now
        if self.state is State.OPEN:
            return now - self.opened_at >= self._cooldown
        return not self._probe_in_flight

    def acquire(self, now: float | None = None) -> bool:
        """Take permission for one call; in half-open only the single probe gets it."""
        if self.state is State.CLOSED:
            return True
        now = time.monotonic() if now is None else now
        if self.state is State.OPEN:
            if now - self.opened_at < self._cooldown:
                return False
            self.state = State.HALF_OPEN
            self._probe_in_flight = False
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    @property
    def probing(self) -> bool:
        """True between a half-open ``acquire`` and the probe's ``record``/``release``."""
        return self.state is State.HALF_OPEN and self._probe_in_flight

    def record(self, ok: bool, now: float | None = None, *, probe: bool = False) -> None:
        """Count one call's outcome. In half-open only the probe's outcome (``probe=True``) decides;
        a call that started before the breaker opened says nothing about the channel now."""
        now = time.monotonic() if now is None else now
        if self.state is State.HALF_OPEN:
            if not probe:
                return
            self._probe_in_flight = False
            if ok:
                self.state = State.CLOSED
                self._outcomes.clear()
                self._cooldown = self._cfg.cooldown_s
            else:
                self._open(now, backoff=True)
            return
        if self.state is State.OPEN:
            return
        self._outcomes.append(ok)
        count = len(self._outcomes)
        if count >= self._cfg.min_requests:
            failures = count - sum(self._outcomes)
            if failures / count >= self._cfg.error_rate:
                self._open(now, backoff=False)

    def release(self) -> None:
        """An acquired call ended without a verdict on the channel (e.g. the client went away)."""
        if self.state is State.HALF_OPEN:
            self._probe_in_flight = False

    def _open(self, now: float, *, backoff: bool) -> None:
        if backoff:
            self._cooldown = min(self._cooldown * 2, self._cfg.max_cooldown_s)
        self.state = State.OPEN
        self.opened_at = now
        self._outcomes.clear()
