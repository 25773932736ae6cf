"""The composition root: builds every long-lived part from Settings and tears them down in order."""

from __future__ import annotations

import gc
import hmac
import logging
import os
import sys
from typing import Any

import aiohttp

from omnirelay.core.accounts import hash_key, new_key
from omnirelay.core.billing import Billing
from omnirelay.core.channels import ChannelService
from omnirelay.core.image_catalog import ImageCatalog, load_image_catalog, price_entry
from omnirelay.core.imaging import ImageService
from omnirelay.core.keys import KeyRegistry
from omnirelay.core.latency import LatencyBoard
from omnirelay.core.pricing import PriceBook, load_shipped_catalog
from omnirelay.core.router import Router
from omnirelay.core.tasks.comfyui import ComfyUITaskHandler
from omnirelay.core.tasks.comfyui import price_entries as comfyui_price_entries
from omnirelay.core.tasks.engine import TaskEngine
from omnirelay.core.tasks.images import ImageTaskHandler
from omnirelay.core.tasks.midjourney import MidjourneyTaskHandler, load_task_prices
from omnirelay.core.tasks.videos import VideoTaskHandler
from omnirelay.core.videos import load_video_catalog, video_price_entry
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig, Settings
from omnirelay.store.db import create_engine, migrate
from omnirelay.store.files import FileStore, build_file_store
from omnirelay.store.repo import Store
from omnirelay.store.tasks import TaskStore
from omnirelay.store.writer import UsageWriter

log = logging.getLogger("omnirelay")
ADMIN_KEY_META = "admin_key_hash"


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings.resolved_database_url)
        self.store = Store(self.engine)
        self.writer = UsageWriter(
            self.store,
            flush_interval_s=settings.usage_log.flush_interval_s,
            batch_size=settings.usage_log.batch_size,
        )
        self.billing = Billing(
            self.writer, default_output_hold_tokens=settings.billing.default_output_hold_tokens
        )
        self.keys = KeyRegistry(self.store)
        image_rows = load_image_catalog()
        self.prices = PriceBook(
            load_shipped_catalog()
            + [price_entry(r) for r in image_rows]
            + [video_price_entry(r) for r in load_video_catalog()]
            + comfyui_price_entries()
            + load_task_prices(),
            settings.models,
        )
        self.latency = LatencyBoard()
        self.router = Router(settings.routing.breaker, self._adapter_for)
        self.channels = ChannelService(self.store, self.router)
        self._http: aiohttp.ClientSession | None = None
        self._files: FileStore | None = None
        self._admin_hash = ""
        self.images = ImageService(
            catalog=ImageCatalog(image_rows),
            prices=self.prices,
            router=self.router,
            routing=settings.routing,
            billing=self.billing,
            files=lambda: self.files,
            http=lambda: self.http,
        )
        self.tasks = TaskEngine(
            settings=settings,
            store=TaskStore(self.engine),
            billing=self.billing,
            keys=self.keys,
            prices=self.prices,
            http=lambda: self.http,
        )
        files = lambda: self.files  # noqa: E731  (read when a task runs, after start)
        for handler in (
            ImageTaskHandler(images=self.images, router=self.router, routing=settings.routing, files=files),
            VideoTaskHandler(
                router=self.router, routing=settings.routing, files=files, http=lambda: self.http
            ),
            ComfyUITaskHandler(images=self.images, router=self.router, routing=settings.routing, files=files),
            MidjourneyTaskHandler(
                images=self.images,
                router=self.router,
                routing=settings.routing,
                files=files,
                parents=self.tasks.get,
            ),
        ):
            self.tasks.register(handler)
        self.tasks.pace = self._poll_pace

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise RuntimeError("the gateway has not been started")
        return self._http

    def _poll_pace(self, task: Any) -> float:
        channel = self.router.channel(task.channel or "")
        interval = getattr(channel.adapter, "poll_interval_s", 1.0) if channel is not None else 1.0
        return float(interval) if isinstance(interval, int | float) and interval > 0 else 1.0

    @property
    def files(self) -> FileStore:
        if self._files is None:
            raise RuntimeError("the gateway has not been started")
        return self._files

    def _adapter_for(self, channel: ChannelConfig) -> Any:
        cls = adapter_class(channel.provider)
        return cls(channel, self.http, connect_timeout_s=self.settings.routing.connect_timeout_s)

    async def start(self) -> None:
        await migrate(self.engine)
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=0, limit_per_host=0, ttl_dns_cache=300, keepalive_timeout=60
            ),
            # No cookies: a gateway must never carry one client's upstream session into another's call.
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
        )
        self._files = build_file_store(self.settings.storage, self.settings.data_dir, self._http)
        await self.keys.load()
        await self.channels.load(self.settings.channels)
        await self._init_admin_key()
        self.writer.start()
        await self.tasks.start()
        # Everything built so far lives as long as the process: keep it out of every GC pass.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        await self.tasks.stop()
        await self.writer.close()
        if self._files is not None:
            await self._files.close()
            self._files = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.engine.dispose()

    async def _init_admin_key(self) -> None:
        from_env = os.environ.get("OMNIRELAY_ADMIN_KEY")
        if from_env:
            self._admin_hash = hash_key(from_env)
            await self.store.set_meta(ADMIN_KEY_META, self._admin_hash)
            return
        stored = await self.store.get_meta(ADMIN_KEY_META)
        if stored:
            self._admin_hash = stored
            return
        clear = new_key()
        self._admin_hash = hash_key(clear)
        await self.store.set_meta(ADMIN_KEY_META, self._admin_hash)
        # Shown once: only the hash is stored.
        print(
            f"omnirelay: generated the operator key (shown only now, store it safely): {clear}",
            file=sys.stderr,
            flush=True,
        )

    def is_admin(self, clear: str | None) -> bool:
        return bool(clear) and hmac.compare_digest(hash_key(clear or ""), self._admin_hash)
