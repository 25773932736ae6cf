"""Image V2 as a durable task (``/302/v2/image/generate?run_async=true`` / ``?webhook=``).

Submit sends the job once through the router. Vendors with an asynchronous API (``submit`` and
``check`` on the adapter) return their job id and are polled; synchronous vendors generate in the
submit step itself. Results are stored like every other image.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from omnirelay.core.dispatch import AttemptLog, dispatch
from omnirelay.core.images import ImageInput, ImageJob, ImageResult
from omnirelay.core.imaging import ImageService
from omnirelay.core.router import Channel, Router
from omnirelay.core.tasks.model import Finished, Pending, Submitted, Task
from omnirelay.core.usage import Usage
from omnirelay.errors import GatewayError
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.settings import RoutingSettings
from omnirelay.store.files import FileStore

FAMILY = "image_v2"
_STATUS = {"pending": "pending", "submitting": "pending", "processing": "processing",
           "succeeded": "completed", "failed": "failed", "cancelled": "failed"}  # fmt: skip


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def task_view(task: Task) -> dict[str, Any]:
    """The 302 V2 task object for a durable image task (the fetch and webhook shapes)."""
    result = task.result or {}
    urls = list(result.get("image_urls") or [])
    body: dict[str, Any] = {
        "task_id": task.id,
        "status": _STATUS.get(task.status, task.status),
        "task_type": "image",
        "model": task.model,
        "req": task.request.get("req", {}),
        "image_url": urls[0] if urls else None,
        "image_urls": urls,
        "raw_response": result.get("raw"),
        "created_at": _iso(task.created_at),
        "updated_at": _iso(task.updated_at),
        "completed_at": _iso(task.completed_at),
        "execution_time": f"{(task.completed_at or time.time()) - task.created_at:.2f}",
        "attempts": task.polls,
        "upstream_task_id": task.upstream_task_id,
        "webhook": task.webhook_url or "",
        "ai302_cost_request_ids": [task.request_id],
    }
    if task.error:
        body["error"] = task.error
    return body


class ImageTaskHandler:
    family = FAMILY

    def __init__(
        self,
        *,
        images: ImageService,
        router: Router,
        routing: RoutingSettings,
        files: Any,
        submit_timeout_s: float = 300.0,
    ) -> None:
        self._images = images
        self._router = router
        self._routing = routing
        self._files = files
        self._submit_timeout_s = submit_timeout_s

    async def _job(self, task: Task) -> ImageJob:
        spec = self._images.catalog.get(task.model)
        if spec is None:
            raise GatewayError(f"image model {task.model} is no longer in the table")
        files: FileStore = self._files()
        inputs: list[ImageInput] = []
        for key in task.request.get("inputs", []):
            stored = await files.get(key)
            if stored is None:
                raise GatewayError("an input image of this task is gone from storage")
            inputs.append(ImageInput(stored.data, stored.media_type))
        mask = None
        if task.request.get("mask"):
            stored = await files.get(task.request["mask"])
            mask = ImageInput(stored.data, stored.media_type) if stored else None
        params = task.request.get("job", {})
        return ImageJob(spec=spec, images=inputs, mask=mask, **params)

    async def submit(self, task: Task) -> Submitted | Finished:
        job = await self._job(task)
        log = AttemptLog()

        async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> Submitted | ImageResult:
            spec = (
                job.spec
                if upstream_model == job.spec.id
                else dataclasses.replace(job.spec, upstream_model=upstream_model)
            )
            routed = dataclasses.replace(job, spec=spec)
            key = channel.next_key()
            adapter = channel.adapter
            if hasattr(adapter, "submit") and hasattr(adapter, "check"):
                upstream_id = await adapter.submit(routed, key, time.monotonic() + timeout_s)
                return Submitted(str(upstream_id), channel.name, {"key": _key_index(channel, key)})
            result: ImageResult = await adapter.generate_image(routed, key, timeout_s)
            return result

        try:
            channel, outcome = await dispatch(self._router, self._routing, task.model, attempt, log)
        except GatewayError as exc:
            return Finished(None, None, failed=True, error=_error_of(exc), channel=log.channel)
        if isinstance(outcome, Submitted):
            return outcome
        return await self._finished(task, outcome, channel.name)

    async def check(self, task: Task) -> Pending | Finished:
        channel = self._router.channel(task.channel or "")
        if channel is None or task.upstream_task_id is None:
            raise ProviderError(
                FailureKind.CONNECT, "the task's channel is gone; trying again later", retryable=True
            )
        keys = channel.config.api_keys
        index = int(task.upstream_state.get("key", 0))
        key = keys[index] if 0 <= index < len(keys) else channel.next_key()
        try:
            result = await channel.adapter.check(task.upstream_task_id, key, time.monotonic() + 60.0)
        except ProviderError as exc:
            if exc.kind is FailureKind.GENERATION:
                message = (
                    "the upstream refused the request"
                    if exc.client_fault
                    else "the upstream could not generate"
                )
                error = {
                    "error": "generation_failed",
                    "message": f"{message}: {exc.message}",
                    "error_type": "generation_failed",
                }
                return Finished(None, None, failed=True, error=error, channel=channel.name)
            raise
        if result is None:
            return Pending()
        return await self._finished(task, result, channel.name)

    async def _finished(self, task: Task, result: ImageResult, channel: str) -> Finished:
        base = str(task.request.get("public_base", ""))
        stored = await self._images.store_results(result.images, base)
        if not stored:
            error = {
                "error": "generation_failed",
                "message": "the upstream returned no image",
                "error_type": "generation_failed",
            }
            return Finished(None, None, failed=True, error=error, channel=channel)
        body = {"image_urls": [image.url for image in stored], "raw": result.raw}
        return Finished(
            body, Usage(requests=len(stored)), channel=channel, upstream_task_id=result.upstream_task_id
        )

    async def reconcile(self, task: Task) -> Submitted | None:
        return None  # no image vendor offers a lookup by our id: never resubmit

    def webhook_payload(self, task: Task) -> dict[str, Any]:
        view = task_view(task)
        return {"model": task.model, "status": view["status"], "request_id": task.request_id,
                "webhook": task.webhook_url, "task_id": task.id, "result": view}  # fmt: skip


def _key_index(channel: Channel, key: str) -> int:
    try:
        return channel.config.api_keys.index(key)
    except ValueError:
        return 0


def _error_of(exc: GatewayError) -> dict[str, Any]:
    return {"error": exc.code, "message": exc.message, "error_type": exc.type, "err_code": exc.err_code}
