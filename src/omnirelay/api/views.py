"""How accounts, keys and usage rows look on the wire (302 field names, USD as decimal strings)."""

from __future__ import annotations

from typing import Any

from omnirelay.core.accounts import AccountState, KeyState
from omnirelay.money import usd_number, usd_str


def account_view(account: AccountState, keys: int) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "balance": usd_str(account.balance),
        "held": usd_str(account.held),
        "api_keys": keys,
        "created_at": account.created_at,
        # Signs this account's task webhooks (docs/tasks.md); shown to the operator and the owner.
        "webhook_secret": account.webhook_secret,
    }


def key_view(key: KeyState, clear: str | None = None) -> dict[str, Any]:
    return {
        "id": key.id,
        "api_name": key.api_name,
        "api_key": clear if clear is not None else key.key_hint,
        "allow_save_logs": key.allow_save_logs,
        "allow_manage_key": key.allow_manage_key,
        "allow_custom_model": key.allow_custom_model,
        "limit_cost": usd_number(key.limit_cost),
        "current_cost": usd_number(key.current_cost),
        "limit_daily_cost": usd_number(key.limit_daily_cost),
        "current_date_cost": usd_number(key.current_date_cost),
        "expired_on": key.expired_on,
        "created_at": key.created_at,
    }


def record_view(row: dict[str, Any]) -> dict[str, Any]:
    """One request's cost record (``/dashboard/record/{id}`` and the items of ``/dashboard/api-record``)."""
    return {
        "request_id": row["request_id"],
        "cost": usd_number(int(row["cost"])),
        "input_token": row["input_tokens"],
        "cached_input_token": row["cached_input_tokens"],
        "output_token": row["output_tokens"],
        "reasoning_token": row["reasoning_tokens"],
        "model": row["model"],
        "api_name": row["api_name"],
        "endpoint": row["endpoint"],
        "status": row["status"],
        "http_status": row["http_status"],
        "estimated_tokens": bool(row["estimated"]),
        "process_time": row["latency_ms"],
        "first_byte_time": row["first_byte_ms"],
        "created_at": row["created_at"],
    }
