"""Shared machinery for the image vendors' simulators.

Each vendor simulator subclasses ``ImageSim``: it gets an aiohttp server on loopback, request
recording, failure injection, asynchronous-job bookkeeping and hosting of the result files it
"generates" (real PNG/JPEG/WEBP bytes of the asked size, made with Pillow), and adds only its
vendor's routes, auth check and wire shapes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import BodyPartReader, web
from PIL import Image

from omnirelay.core.images import GeneratedImage, ImageJob, ImageModelSpec
from tests.upstreams.threaded import start_in_thread

JSON = dict[str, Any]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
DEFAULT_KEY = "sk-upstream-test"


def make_image(
    width: int = 64, height: int = 64, fmt: str = "png", color: tuple[int, int, int] = (30, 120, 200)
) -> bytes:
    """Real image bytes of the given size and format ("png", "jpeg" or "webp")."""
    buffer = io.BytesIO()
    Image.new("RGB", (max(1, width), max(1, height)), color).save(
        buffer, format=fmt.upper().replace("JPG", "JPEG")
    )
    return buffer.getvalue()


def media_type_of(fmt: str) -> str:
    return {"jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}.get(fmt.lower(), "image/png")


@dataclass
class ImageSimConfig:
    latency_ms: int = 0
    # Next requests answered with these statuses (an int, or {"status", "body", "headers"}).
    fail_next: list[Any] = field(default_factory=list)
    # Asynchronous vendors: polls answered "in progress" before a job is ready.
    polls_before_ready: int = 1
    # The next N jobs end in the vendor's failed / moderated state instead of succeeding.
    fail_jobs_next: int = 0
    moderate_jobs_next: int = 0
    # Result image size when the request gives none.
    default_size: tuple[int, int] = (64, 64)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    json: Any = None
    form: dict[str, Any] = field(default_factory=dict)  # fields: str; files: (filename, bytes, content type)


RECORDED = web.RequestKey("recorded", Recorded)


@dataclass
class Job:
    """An asynchronous job as a vendor keeps it."""

    id: str
    request: Any
    outputs: list[str] = field(default_factory=list)  # result file URLs
    polls: int = 0
    outcome: str = "succeeded"  # "succeeded", "failed" or "moderated"


class ImageSim:
    """Base class. Subclasses implement ``routes()`` and use the helpers below."""

    def __init__(self, api_keys: set[str] | None = None, config: ImageSimConfig | None = None) -> None:
        self.api_keys = set(api_keys or {DEFAULT_KEY})
        self.config = config or ImageSimConfig()
        self.requests: list[Recorded] = []
        self.files: dict[str, tuple[bytes, str]] = {}
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._port = 0

    # --- to override ----------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.add_routes([web.get("/_files/{name}", self._serve_file), *self.routes()])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # --- helpers for subclasses -----------------------------------------------------------------

    def new_id(self, prefix: str = "") -> str:
        return f"{prefix}{next(self._ids):06d}{secrets.token_hex(4)}"

    def host_image(self, width: int, height: int, fmt: str = "png") -> str:
        """Make a result image, keep it, and return the URL a client downloads it from."""
        name = f"{self.new_id('img')}.{'jpg' if fmt in ('jpg', 'jpeg') else fmt}"
        self.files[name] = (make_image(width, height, fmt), media_type_of(fmt))
        return f"{self.base_url}/_files/{name}"

    def take_injected_failure(self) -> web.Response | None:
        """The next ``fail_next`` entry as a response, in this vendor's error shape (see error_body)."""
        if not self.config.fail_next:
            return None
        spec = self.config.fail_next.pop(0)
        if isinstance(spec, dict):
            status = int(spec["status"])
            body = spec.get("body") or self.error_body(status, f"injected failure {status}")
            return web.json_response(body, status=status, headers=spec.get("headers"))
        return web.json_response(self.error_body(int(spec), f"injected failure {spec}"), status=int(spec))

    def error_body(self, status: int, message: str) -> JSON:
        """This vendor's error body; subclasses override to match their API reference."""
        return {"error": {"message": message, "status": status}}

    def job_outcome(self) -> str:
        if self.config.moderate_jobs_next > 0:
            self.config.moderate_jobs_next -= 1
            return "moderated"
        if self.config.fail_jobs_next > 0:
            self.config.fail_jobs_next -= 1
            return "failed"
        return "succeeded"

    def last(self) -> Recorded:
        return self.requests[-1]

    async def read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        record = request[RECORDED]
        record.body = raw
        try:
            record.json = await request.json()
        except ValueError:
            record.json = None
        return record.json

    async def read_form(self, request: web.Request) -> dict[str, Any]:
        """multipart/form-data or urlencoded fields; file parts become (filename, bytes, content type)."""
        record = request[RECORDED]
        form: dict[str, Any] = {}
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            while True:
                part = await reader.next()
                if part is None:
                    break
                if not isinstance(part, BodyPartReader) or part.name is None:
                    continue
                data = await part.read()
                value: Any
                if part.filename:
                    value = (part.filename, bytes(data), part.headers.get("Content-Type", ""))
                else:
                    value = bytes(data).decode()
                if part.name in form:
                    existing = form[part.name]
                    form[part.name] = [*existing, value] if isinstance(existing, list) else [existing, value]
                else:
                    form[part.name] = value
        else:
            posted = await request.post()
            form = {k: v for k, v in posted.items() if isinstance(v, str)}
        record.form = form
        return form

    # --- internals ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/_files/"):
            record = Recorded(
                request.method,
                request.path,
                dict(request.query),
                {k.lower(): v for k, v in request.headers.items()},
            )
            self.requests.append(record)
            request[RECORDED] = record
            if self.config.latency_ms:
                await asyncio.sleep(self.config.latency_ms / 1000)
        return await handler(request)

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        found = self.files.get(request.match_info["name"])
        if found is None:
            return web.json_response({"error": "not found"}, status=404)
        return web.Response(body=found[0], content_type=found[1])


SimT = TypeVar("SimT", bound=ImageSim)


@contextmanager
def image_sim_in_thread(sim: SimT) -> Iterator[SimT]:
    """Run ``sim`` on its own event loop in a daemon thread (for the gateway's in-thread server)."""
    stop = start_in_thread(sim, name=type(sim).__name__)
    try:
        yield sim
    finally:
        stop()


# --- helpers shared by the vendor tests ------------------------------------------------------------


def catalog_dicts(adapter: str) -> list[JSON]:
    """The rows of catalog/images.yaml served by ``adapter``, as written there."""
    from omnirelay.core.image_catalog import load_image_catalog

    return [row for row in load_image_catalog() if row["adapter"] == adapter]


def catalog_specs(adapter: str) -> list[ImageModelSpec]:
    """The same rows as the gateway reads them."""
    from omnirelay.core.image_catalog import spec_from_row

    return [spec_from_row(row) for row in catalog_dicts(adapter)]


def default_job(spec: ImageModelSpec, **changes: Any) -> ImageJob:
    """The job a client gets with no geometry asked: the defaults of the row's rules."""
    width = height = 1024
    dims = spec.rules.get("dimensions")
    if dims:
        width = height = int(dims["default"])
    ratio = spec.rules.get("aspect_ratio", {}).get("default")
    job = ImageJob(spec=spec, prompt="a lighthouse at dawn", width=width, height=height, aspect_ratio=ratio)
    return dataclasses.replace(job, **changes)


async def image_size(http: aiohttp.ClientSession, image: GeneratedImage) -> tuple[int, int]:
    """Width and height of a result, downloading it when the vendor gave a URL."""
    data = image.data
    if data is None:
        assert image.url is not None
        async with http.get(image.url) as resp:
            assert resp.status == 200
            data = await resp.read()
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return img.size
