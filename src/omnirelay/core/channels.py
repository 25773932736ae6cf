"""Channel storage and runtime changes.

The database holds the live channel set. A channel in the config file is written to the database
when it first appears and again whenever its entry in the file changes; changes made through the
operator API persist across restarts until the file's entry for that name changes.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import ValidationError

from omnirelay.core.router import Router
from omnirelay.errors import InvalidRequest, NotFound
from omnirelay.settings import ChannelConfig
from omnirelay.store.repo import Store


def _file_hash(cfg: ChannelConfig) -> str:
    return hashlib.sha256(orjson.dumps(cfg.model_dump(), option=orjson.OPT_SORT_KEYS)).hexdigest()


def parse_channel(body: Any, *, name: str | None = None) -> ChannelConfig:
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object describing a channel.")
    data = dict(body)
    if name is not None:
        if "name" in data and data["name"] != name:
            raise InvalidRequest(
                "the channel name in the body differs from the one in the path", param="name"
            )
        data["name"] = name
    try:
        return ChannelConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise InvalidRequest(f"invalid channel field '{where}': {first['msg']}", param=where) from None


class ChannelService:
    def __init__(self, store: Store, router: Router) -> None:
        self._store = store
        self._router = router
        self._configs: dict[str, ChannelConfig] = {}

    async def load(self, from_file: list[ChannelConfig]) -> None:
        rows = {row["name"]: row for row in await self._store.load_channels()}
        for cfg in from_file:
            digest = _file_hash(cfg)
            row = rows.get(cfg.name)
            if row is None or row["file_hash"] != digest:
                await self._store.upsert_channel(cfg.name, cfg.model_dump(), "file", digest)
        configs = {}
        for row in await self._store.load_channels():
            configs[row["name"]] = ChannelConfig.model_validate(orjson.loads(row["config"]))
        self._configs = configs
        self._router.set_channels(configs.values())

    def list(self) -> list[ChannelConfig]:
        return list(self._configs.values())

    def get(self, name: str) -> ChannelConfig:
        cfg = self._configs.get(name)
        if cfg is None:
            raise NotFound(f"channel '{name}' does not exist")
        return cfg

    async def create(self, cfg: ChannelConfig) -> ChannelConfig:
        if cfg.name in self._configs:
            raise InvalidRequest(f"channel '{cfg.name}' already exists; use PUT to change it", param="name")
        return await self._save(cfg)

    async def replace(self, cfg: ChannelConfig, *, keep_keys: bool) -> ChannelConfig:
        old = self.get(cfg.name)
        if keep_keys and not cfg.api_keys:
            cfg = cfg.model_copy(update={"api_keys": list(old.api_keys)})
        return await self._save(cfg)

    async def _save(self, cfg: ChannelConfig) -> ChannelConfig:
        rows = {row["name"]: row for row in await self._store.load_channels()}
        previous_hash = rows[cfg.name]["file_hash"] if cfg.name in rows else ""
        await self._store.upsert_channel(cfg.name, cfg.model_dump(), "api", previous_hash)
        self._configs[cfg.name] = cfg
        self._router.set_channels(self._configs.values())
        return cfg

    async def delete(self, name: str) -> None:
        self.get(name)
        await self._store.delete_channel(name)
        del self._configs[name]
        self._router.set_channels(self._configs.values())
