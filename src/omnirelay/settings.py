"""Settings: one validated object from the YAML config file, the environment and the command line.

Precedence: command-line flags > environment (``OMNIRELAY_*``) > config file > defaults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from omnirelay.core.fetch import FetchPolicy
from omnirelay.store.files import StorageSettings

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class ChannelConfig(BaseModel):
    """One upstream: a provider endpoint, its keys, and the models it serves."""

    model_config = ConfigDict(extra="forbid")

    name: str
    provider: str = "openai"  # a key of omnirelay.providers.registry.ADAPTERS
    base_url: str
    api_key: str | None = None
    api_keys: list[str] = Field(default_factory=list)
    # A list of public names (same name upstream) or a map public name -> upstream name.
    models: list[str] | dict[str, str] = Field(default_factory=list)
    priority: int = 0
    weight: int = Field(default=1, ge=0)
    timeout_s: float = Field(default=120.0, gt=0)
    enabled: bool = True

    @field_validator("name")
    @classmethod
    def _name_ok(cls, value: str) -> str:
        if not value or len(value) > 64 or not set(value) <= _NAME_CHARS:
            raise ValueError("channel name: 1-64 characters of letters, digits, '-', '_', '.'")
        return value

    @field_validator("provider")
    @classmethod
    def _provider_ok(cls, value: str) -> str:
        from omnirelay.providers.registry import PROVIDER_IDS

        if value not in PROVIDER_IDS:
            raise ValueError(f"unknown provider {value!r}; known: {', '.join(sorted(PROVIDER_IDS))}")
        return value

    @field_validator("base_url")
    @classmethod
    def _url_ok(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _keys(self) -> ChannelConfig:
        if self.api_key and self.api_key not in self.api_keys:
            self.api_keys = [self.api_key, *self.api_keys]
        self.api_key = None
        return self

    def model_map(self) -> dict[str, str]:
        if isinstance(self.models, dict):
            return dict(self.models)
        return {name: name for name in self.models}

    def public(self) -> dict[str, Any]:
        """The channel as the operator API shows it: upstream keys are never returned."""
        data = self.model_dump(exclude={"api_key", "api_keys"})
        data["api_keys_count"] = len(self.api_keys)
        return data


class BreakerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window: int = Field(default=20, ge=1)
    min_requests: int = Field(default=5, ge=1)
    error_rate: float = Field(default=0.5, gt=0, le=1)
    cooldown_s: float = Field(default=30.0, gt=0)
    max_cooldown_s: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> BreakerSettings:
        if self.min_requests > self.window:
            raise ValueError("breaker.min_requests must not exceed breaker.window (it could never open)")
        if self.max_cooldown_s < self.cooldown_s:
            raise ValueError("breaker.max_cooldown_s must be at least breaker.cooldown_s")
        return self


class RoutingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(default=3, ge=1, le=10)
    total_timeout_s: float = Field(default=300.0, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)


class BillingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Output tokens to hold for a request that sets no max_tokens and whose model has no known limit.
    default_output_hold_tokens: int = Field(default=4096, ge=1)


class UsageLogSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flush_interval_s: float = Field(default=0.5, gt=0)
    batch_size: int = Field(default=500, ge=1)


class TaskSettings(BaseModel):
    """The durable task engine (docs/tasks.md)."""

    model_config = ConfigDict(extra="forbid")
    worker: bool = True  # run the worker in this process (pollers, webhooks)
    tick_s: float = Field(default=0.5, gt=0)
    poll_interval_s: float = Field(default=2.0, gt=0)
    max_poll_interval_s: float = Field(default=15.0, gt=0)
    deadline_s: float = Field(default=3600.0, gt=0)
    lease_s: float = Field(default=120.0, gt=0)
    concurrency: int = Field(default=16, ge=1)
    webhook_max_attempts: int = Field(default=5, ge=1)
    webhook_backoff_s: float = Field(default=2.0, gt=0)
    webhook_timeout_s: float = Field(default=10.0, gt=0)


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8302
    data_dir: Path = Path("./data")
    database_url: str | None = None
    public_base_url: str | None = None
    max_body_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    log_level: str = "info"
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    billing: BillingSettings = Field(default_factory=BillingSettings)
    usage_log: UsageLogSettings = Field(default_factory=UsageLogSettings)
    channels: list[ChannelConfig] = Field(default_factory=list)
    models: list[dict[str, Any]] = Field(default_factory=list)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    image_fetch: FetchPolicy = Field(default_factory=FetchPolicy)
    tasks: TaskSettings = Field(default_factory=TaskSettings)

    @field_validator("database_url")
    @classmethod
    def _database_url_ok(cls, value: str | None) -> str | None:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "unsupported database URL: use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB"
            )
        return value

    @model_validator(mode="after")
    def _unique_channels(self) -> Settings:
        names = [c.name for c in self.channels]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise ValueError(f"duplicate channel names: {sorted(dupes)}")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'omnirelay.db').resolve()}"


_ENV = {
    "OMNIRELAY_HOST": "host",
    "OMNIRELAY_PORT": "port",
    "OMNIRELAY_DATA_DIR": "data_dir",
    "OMNIRELAY_DATABASE_URL": "database_url",
    "OMNIRELAY_PUBLIC_BASE_URL": "public_base_url",
    "OMNIRELAY_LOG_LEVEL": "log_level",
}


def load_settings(config_file: str | Path | None = None, **overrides: Any) -> Settings:
    data: dict[str, Any] = {}
    if config_file is not None:
        loaded = yaml.safe_load(Path(config_file).read_text(encoding="utf-8"))
        if loaded is not None and not isinstance(loaded, dict):
            raise ValueError(f"{config_file}: the config file must be a YAML mapping")
        data.update(loaded or {})
    for env, key in _ENV.items():
        if env in os.environ:
            data[key] = os.environ[env]
    data.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate(data)
