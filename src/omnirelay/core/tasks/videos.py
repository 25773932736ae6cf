"""Video V2 as a durable task (``POST /302/v2/video/create``, and the Kling formats over the same rows).

Submit sends the job once through the router to a video channel and keeps the upstream id and the
index of the key that made it (a vendor job can only be polled with the key that created it). Check
polls that channel; when the vendor is done the video is downloaded from the vendor's URL (trusted:
it came from the operator's channel; size-capped), stored in the gateway's file store as MP4 and
served from ``/files/...``. A finished video is charged ``billing_units`` times the model's price per
video (1 at the model's default duration); a failure costs nothing.

The request a task keeps (written by api/videos.py):
``{"req": echo, "format": "v2"|"kling302"|"kling", "job": {prompt, mode, negative_prompt, video_url,
duration, resolution, aspect_ratio, fps, extra}, "image": key|None, "end_image": key|None,
"image_url": hosted|None, "end_image_url": hosted|None, "public_base": str, "units": int}``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from omnirelay.core.dispatch import AttemptLog, dispatch
from omnirelay.core.images import ImageInput
from omnirelay.core.router import Channel, Router
from omnirelay.core.tasks.model import Finished, Pending, Submitted, Task
from omnirelay.core.usage import Usage
from omnirelay.core.videos import VideoCatalog, VideoJob, VideoResult, default_catalog
from omnirelay.errors import ContentRefused, GatewayError, GenerationFailed
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.settings import RoutingSettings
from omnirelay.store.files import FileStore

FAMILY = "video_v2"
KIND = "video"
MAX_VIDEO_BYTES = 512 * 1024 * 1024
DOWNLOAD_TIMEOUT_S = 300.0
CHECK_TIMEOUT_S = 60.0
_CHUNK = 1024 * 1024
_STATUS = {
    "pending": "pending",
    "submitting": "pending",
    "processing": "processing",
    "succeeded": "completed",
    "failed": "failed",
    "cancelled": "failed",
}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def public_status(task: Task) -> str:
    """``pending`` | ``processing`` | ``completed`` | ``failed``."""
    return _STATUS.get(task.status, task.status)


def task_view(task: Task) -> dict[str, Any]:
    """The 302 V2 video task object (the fetch shape, and the webhook's ``result``)."""
    result = task.result or {}
    body: dict[str, Any] = {
        "task_id": task.id,
        "status": public_status(task),
        "task_type": KIND,
        "model": task.model,
        "mode": (task.request.get("job") or {}).get("mode", "t2v"),
        "req": task.request.get("req", {}),
        "video_url": result.get("video_url"),
        "raw_response": result.get("raw"),
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "completed_at": iso(task.completed_at),
        "execution_time": f"{(task.completed_at or time.time()) - task.created_at:.2f}",
        "attempts": task.polls,
        "upstream_task_id": task.upstream_task_id,
        "webhook": task.webhook_url or "",
        "ai302_cost_request_ids": [task.request_id],
        "error": task.error,
    }
    if result.get("cover_url"):
        body["cover_url"] = result["cover_url"]
    return body


def is_mp4(data: bytes) -> bool:
    """An ISO base media file (MP4/MOV): its first box is ``ftyp``."""
    return len(data) >= 12 and data[4:8] == b"ftyp"


def _error(exc: GatewayError) -> dict[str, Any]:
    return {"error": exc.code, "message": exc.message, "error_type": exc.type, "err_code": exc.err_code}


def _generation_error(exc: ProviderError) -> dict[str, Any]:
    if exc.client_fault:
        return _error(ContentRefused(f"The upstream refused this request: {exc.message}"))
    return _error(GenerationFailed(f"The upstream could not generate the video: {exc.message}"))


def _key_index(channel: Channel, key: str) -> int:
    try:
        return channel.config.api_keys.index(key)
    except ValueError:
        return 0


class VideoTaskHandler:
    family = FAMILY

    def __init__(
        self,
        *,
        router: Router,
        routing: RoutingSettings,
        files: Callable[[], FileStore],
        http: Callable[[], aiohttp.ClientSession],
        catalog: VideoCatalog | None = None,
        max_video_bytes: int = MAX_VIDEO_BYTES,
        download_timeout_s: float = DOWNLOAD_TIMEOUT_S,
    ) -> None:
        self._router = router
        self._routing = routing
        self._files = files
        self._http = http
        self.catalog = catalog or default_catalog()
        self._max_bytes = max_video_bytes
        self._download_timeout_s = download_timeout_s

    # --- the job --------------------------------------------------------------------------------

    async def _input(self, key: Any, what: str) -> ImageInput | None:
        if not key:
            return None
        stored = await self._files().get(str(key))
        if stored is None:
            raise GatewayError(f"the {what} of this task is gone from storage")
        return ImageInput(stored.data, stored.media_type)

    async def _job(self, task: Task) -> VideoJob:
        spec = self.catalog.get(task.model)
        if spec is None:
            raise GatewayError(f"video model {task.model} is no longer in the table")
        request = task.request
        params = dict(request.get("job") or {})
        return VideoJob(
            spec=spec,
            image=await self._input(request.get("image"), "input image"),
            end_image=await self._input(request.get("end_image"), "last-frame image"),
            image_url=request.get("image_url"),
            end_image_url=request.get("end_image_url"),
            **params,
        )

    # --- the handler protocol -------------------------------------------------------------------

    async def submit(self, task: Task) -> Submitted | Finished:
        job = await self._job(task)
        log = AttemptLog()

        async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> Submitted:
            adapter = channel.adapter
            if not getattr(adapter, "handles_video", False):
                raise ProviderError(
                    FailureKind.CONNECT, f"channel {channel.name} cannot generate videos", retryable=True
                )
            routed = job
            if upstream_model != job.spec.id:  # the channel maps the public id to its own name
                routed = dataclasses.replace(
                    job, spec=dataclasses.replace(job.spec, upstream_model=upstream_model)
                )
            key = channel.next_key()
            upstream_id = await adapter.submit(routed, key, time.monotonic() + timeout_s)
            return Submitted(str(upstream_id), channel.name, {"key": _key_index(channel, key)})

        try:
            _, sent = await dispatch(self._router, self._routing, task.model, attempt, log)
        except GatewayError as exc:
            return Finished(None, None, failed=True, error=_error(exc), channel=log.channel)
        return sent

    async def check(self, task: Task) -> Pending | Finished:
        channel = self._router.channel(task.channel or "")
        if channel is None or task.upstream_task_id is None:
            raise ProviderError(
                FailureKind.CONNECT, "the task's channel is gone; trying again later", retryable=True
            )
        if not getattr(channel.adapter, "handles_video", False):
            raise ProviderError(
                FailureKind.CONNECT, f"channel {channel.name} no longer serves videos", retryable=True
            )
        keys = channel.config.api_keys
        index = int(task.upstream_state.get("key", 0))
        key = keys[index] if 0 <= index < len(keys) else channel.next_key()
        try:
            result: VideoResult | None = await channel.adapter.check(
                task.upstream_task_id, key, time.monotonic() + CHECK_TIMEOUT_S
            )
        except ProviderError as exc:
            if exc.kind is FailureKind.GENERATION:
                return Finished(None, None, failed=True, error=_generation_error(exc), channel=channel.name)
            raise
        if result is None:
            return Pending()
        return await self._finished(task, result, channel.name)

    async def reconcile(self, task: Task) -> Submitted | None:
        return None  # no video vendor offers a lookup by our id: never resubmit

    def webhook_payload(self, task: Task) -> dict[str, Any]:
        view = task_view(task)
        return {
            "model": task.model,
            "status": view["status"],
            "request_id": task.request_id,
            "webhook": task.webhook_url,
            "task_id": task.id,
            "result": view,
        }

    # --- the result -----------------------------------------------------------------------------

    async def _finished(self, task: Task, result: VideoResult, channel: str) -> Finished:
        data = result.data if result.data is not None else await self._download(result.url or "")
        if data is None or len(data) > self._max_bytes:
            error = _error(GenerationFailed("The generated video is larger than the gateway accepts."))
            return Finished(None, None, failed=True, error=error, channel=channel)
        if not is_mp4(data):
            error = _error(GenerationFailed("The upstream's result is not an MP4 video."))
            return Finished(None, None, failed=True, error=error, channel=channel)
        key = await self._files().put(data, "video/mp4")
        base = str(task.request.get("public_base", "")).rstrip("/")
        body = {
            "video_url": f"{base}/files/{key}",
            "file": key,
            "bytes": len(data),
            "cover_url": result.cover_url,
            "duration": result.duration,
            "raw": result.raw,
        }
        units = task.request.get("units")
        usage = Usage(requests=units if isinstance(units, int) and units > 0 else 1)
        return Finished(body, usage, channel=channel, upstream_task_id=result.upstream_task_id)

    async def _download(self, url: str) -> bytes | None:
        """The video from the vendor's URL, None when over the size cap.

        A failed download is a failed poll (tried again until the deadline), not a verdict.
        """
        if not url.startswith(("http://", "https://")):
            raise ProviderError(FailureKind.HTTP, "the upstream's video URL is not http(s)", retryable=True)
        timeout = aiohttp.ClientTimeout(total=self._download_timeout_s)
        try:
            async with self._http().get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise ProviderError(
                        FailureKind.HTTP,
                        f"downloading the video failed (HTTP {resp.status})",
                        status=resp.status,
                        retryable=True,
                    )
                if resp.content_length is not None and resp.content_length > self._max_bytes:
                    return None
                body = bytearray()
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    body += chunk
                    if len(body) > self._max_bytes:
                        return None
                return bytes(body)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise ProviderError(
                FailureKind.CONNECT, f"downloading the video failed ({type(exc).__name__})", retryable=True
            ) from exc
