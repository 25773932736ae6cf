"""Accounts and client keys: loaded once at start, served from memory, changed through here only."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from omnirelay.core.accounts import AccountState, KeyState, hash_key, key_hint, new_key, utc_day
from omnirelay.errors import (
    InvalidRequest,
    KeyExpired,
    MissingKey,
    NotFound,
    Unauthenticated,
)
from omnirelay.money import usd_to_nanos
from omnirelay.store.repo import Store, now_s


@dataclass(slots=True)
class KeySettings:
    """The 302 key-settings body (spec §6) in internal units."""

    api_name: str
    allow_save_logs: bool = True
    allow_manage_key: bool = False
    allow_custom_model: bool = False
    limit_cost: int = 0
    limit_daily_cost: int = 0
    expired_on: int = 0

    def row(self) -> dict[str, Any]:
        return {
            "api_name": self.api_name,
            "allow_save_logs": self.allow_save_logs,
            "allow_manage_key": self.allow_manage_key,
            "allow_custom_model": self.allow_custom_model,
            "limit_cost": self.limit_cost,
            "limit_daily_cost": self.limit_daily_cost,
            "expired_on": self.expired_on,
        }


_BOOL_FIELDS = ("allow_save_logs", "allow_manage_key", "allow_custom_model")
_MAX_BIGINT = 2**63 - 1  # the largest value the database's BIGINT columns hold


def parse_key_settings(body: Any, *, partial_of: KeyState | None = None) -> KeySettings:
    """Validate a key-settings body; with ``partial_of`` missing fields keep the key's values."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object of key settings.")
    base = partial_of
    name = body.get("api_name", base.api_name if base else None)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRequest(
            "'api_name' must be a non-empty string of at most 200 characters", param="api_name"
        )
    values: dict[str, Any] = {"api_name": name.strip()}
    for field in _BOOL_FIELDS:
        raw = body.get(field, getattr(base, field) if base else None)
        if raw is None:
            continue
        if isinstance(raw, bool):
            values[field] = raw
        elif raw in (0, 1):
            values[field] = bool(raw)
        else:
            raise InvalidRequest(f"'{field}' must be a boolean", param=field)
    for field in ("limit_cost", "limit_daily_cost"):
        if field not in body:
            if base is not None:
                values[field] = getattr(base, field)
            continue
        raw = body[field]
        try:
            nanos = usd_to_nanos(raw if raw is not None else 0)
        except (ValueError, TypeError):
            raise InvalidRequest(f"'{field}' must be a number of USD (0 for no limit)", param=field) from None
        if nanos < 0:
            raise InvalidRequest(f"'{field}' must not be negative", param=field)
        if nanos > _MAX_BIGINT:
            raise InvalidRequest(f"'{field}' is too large", param=field)
        values[field] = nanos
    if "expired_on" in body:
        raw = body["expired_on"]
        if raw is None:
            raw = 0
        if not isinstance(raw, int) or isinstance(raw, bool) or not 0 <= raw <= _MAX_BIGINT:
            raise InvalidRequest("'expired_on' must be unix seconds (0 for never)", param="expired_on")
        values["expired_on"] = raw
    elif base is not None:
        values["expired_on"] = base.expired_on
    return KeySettings(**values)


class KeyRegistry:
    def __init__(self, store: Store) -> None:
        self._store = store
        self.accounts: dict[int, AccountState] = {}
        self._by_hash: dict[str, KeyState] = {}
        self._by_id: dict[int, KeyState] = {}

    async def load(self) -> None:
        accounts = {
            row["id"]: AccountState(
                row["id"],
                row["name"],
                int(row["balance"]),
                int(row["created_at"]),
                webhook_secret=str(row.get("webhook_secret") or ""),
            )
            for row in await self._store.load_accounts()
        }
        by_hash: dict[str, KeyState] = {}
        by_id: dict[int, KeyState] = {}
        for row in await self._store.load_keys():
            account = accounts.get(row["account_id"])
            if account is None:
                continue
            key = _key_from_row(row, account)
            by_hash[key.key_hash] = key
            by_id[key.id] = key
        self.accounts, self._by_hash, self._by_id = accounts, by_hash, by_id

    # --- the hot path ---------------------------------------------------------------------------

    def authenticate(self, clear: str | None) -> KeyState:
        if not clear:
            raise MissingKey("Missing 302 Apikey")
        key = self._by_hash.get(hash_key(clear))
        if key is None or not key.enabled:
            raise Unauthenticated("Invalid API Key")
        if key.expired_on and time.time() >= key.expired_on:
            raise KeyExpired("This API key has expired")
        return key

    # --- accounts -------------------------------------------------------------------------------

    async def create_account(self, name: str, balance: int) -> AccountState:
        row = await self._store.create_account(name, balance)
        account = AccountState(
            row["id"], name, balance, row["created_at"], webhook_secret=row["webhook_secret"]
        )
        self.accounts[account.id] = account
        return account

    def account(self, account_id: int) -> AccountState:
        account = self.accounts.get(account_id)
        if account is None:
            raise NotFound(f"account {account_id} does not exist")
        return account

    async def topup(self, account_id: int, amount: int) -> AccountState:
        account = self.account(account_id)
        await self._store.topup(account_id, amount)
        account.balance += amount
        return account

    # --- keys -----------------------------------------------------------------------------------

    def key_by_id(self, key_id: int) -> KeyState | None:
        return self._by_id.get(key_id)

    def keys_of(self, account_id: int) -> list[KeyState]:
        return sorted((k for k in self._by_id.values() if k.account.id == account_id), key=lambda k: k.id)

    def key_named(self, account_id: int, api_name: str) -> KeyState:
        for key in self._by_id.values():
            if key.account.id == account_id and key.api_name == api_name:
                return key
        raise NotFound(f"API key '{api_name}' does not exist")

    async def create_key(self, account_id: int, settings: KeySettings) -> tuple[KeyState, str]:
        account = self.account(account_id)
        if any(k.api_name == settings.api_name for k in self.keys_of(account_id)):
            raise InvalidRequest(f"an API key named '{settings.api_name}' already exists", param="api_name")
        clear = new_key()
        values = {
            **settings.row(),
            "account_id": account_id,
            "key_hash": hash_key(clear),
            "key_hint": key_hint(clear),
            "current_cost": 0,
            "current_date_cost": 0,
            "cost_date": utc_day(),
            "enabled": True,
            "created_at": now_s(),
        }
        key_id = await self._store.insert_key(values)
        key = _key_from_row({**values, "id": key_id}, account)
        self._by_hash[key.key_hash] = key
        self._by_id[key.id] = key
        return key, clear

    async def update_key(self, key: KeyState, settings: KeySettings) -> KeyState:
        if settings.api_name != key.api_name and any(
            k.api_name == settings.api_name for k in self.keys_of(key.account.id)
        ):
            raise InvalidRequest(f"an API key named '{settings.api_name}' already exists", param="api_name")
        await self._store.update_key(key.id, settings.row())
        for field, value in settings.row().items():
            setattr(key, field, value)
        return key

    async def delete_key(self, key: KeyState) -> None:
        await self._store.delete_key(key.id)
        self._by_hash.pop(key.key_hash, None)
        self._by_id.pop(key.id, None)


def _key_from_row(row: dict[str, Any], account: AccountState) -> KeyState:
    return KeyState(
        id=int(row["id"]),
        account=account,
        api_name=row["api_name"],
        key_hash=row["key_hash"],
        key_hint=row["key_hint"],
        allow_save_logs=bool(row["allow_save_logs"]),
        allow_manage_key=bool(row["allow_manage_key"]),
        allow_custom_model=bool(row["allow_custom_model"]),
        limit_cost=int(row["limit_cost"]),
        current_cost=int(row["current_cost"]),
        limit_daily_cost=int(row["limit_daily_cost"]),
        current_date_cost=int(row["current_date_cost"]),
        cost_date=row["cost_date"],
        expired_on=int(row["expired_on"]),
        enabled=bool(row["enabled"]),
        created_at=int(row["created_at"]),
    )
