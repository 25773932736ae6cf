"""In-memory state of accounts and keys: the hot path reads and reserves here, never in the database.

One gateway process owns these numbers (docs/architecture.md, "Money"); the batched writer persists
every change as increments, so the database converges to the same figures.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field

KEY_PREFIX = "sk-"


def hash_key(clear: str) -> str:
    # Keys are 256-bit random, so a fast hash is safe: there is nothing to brute-force.
    return hashlib.sha256(clear.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(36).replace("-", "a").replace("_", "b")


def key_hint(clear: str) -> str:
    return f"{clear[:7]}...{clear[-4:]}"


_day_cache: tuple[int, str] = (-1, "")


def utc_day(now: float | None = None) -> str:
    """The UTC date, e.g. "2026-11-21"; formatted once per day, not once per call."""
    global _day_cache
    day_number = int((now if now is not None else time.time()) // 86400)
    cached_number, cached = _day_cache
    if day_number == cached_number:
        return cached
    text = time.strftime("%Y-%m-%d", time.gmtime(day_number * 86400))
    _day_cache = (day_number, text)
    return text


@dataclass(slots=True)
class AccountState:
    id: int
    name: str
    balance: int
    created_at: int
    held: int = 0
    webhook_secret: str = ""

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass(slots=True)
class KeyState:
    id: int
    account: AccountState
    api_name: str
    key_hash: str
    key_hint: str
    allow_save_logs: bool
    allow_manage_key: bool
    allow_custom_model: bool
    limit_cost: int
    current_cost: int
    limit_daily_cost: int
    current_date_cost: int
    cost_date: str
    expired_on: int
    enabled: bool
    created_at: int
    held: int = 0
    extra: dict[str, object] = field(default_factory=dict)

    def roll_day(self, today: str) -> None:
        if self.cost_date != today:
            self.cost_date = today
            self.current_date_cost = 0
