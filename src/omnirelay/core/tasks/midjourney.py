"""Midjourney (midjourney-proxy format) as durable tasks: prices, the task object, the handler.

The routes (api/midjourney.py) check a submit, store its images in the file store and write a task:
family ``midjourney``, kind the action (imagine, blend, describe, action, modal), model
``<pool>/<action>`` (the price-book id it is billed under, catalog/tasks.yaml) and a request of
``{kind, pool, fields, images, mask, parent, public_base}``. ``pool`` is the public pool model
(``midjourney``, ``midjourney-relax``, ``midjourney-turbo``) whose channels serve the job.

``submit`` sends the job once: imagine, blend and describe go through ``dispatch`` over the pool's
channels; action and modal continue a PARENT task (our id in ``parent``), so they go to the channel
that ran the parent, with the parent's upstream task id. ``check`` follows the upstream task:
NOT_START, SUBMITTED, IN_PROGRESS and MODAL stay pending (MODAL with progress "MODAL"); SUCCESS
stores the image (grid or result) in the file store and finishes with the upstream task object;
FAILURE and CANCEL finish failed, refunded. The client's view (``task_object``) is the
midjourney-proxy task object with our ids and our hosted image URL.

An action that opened a modal (Vary Region, Custom Zoom, remix) is billed at the modal: the action
task itself finishes free when its upstream job went through MODAL.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from omnirelay.core.dispatch import AttemptLog, dispatch, to_gateway_error
from omnirelay.core.images import GeneratedImage, ImageInput
from omnirelay.core.imaging import ImageService
from omnirelay.core.router import Channel, Router
from omnirelay.core.tasks.model import Finished, Pending, Submitted, Task
from omnirelay.core.usage import Usage
from omnirelay.errors import (
    ContentRefused,
    GatewayError,
    InsufficientBalance,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    UpstreamClientError,
)
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.midjourney.adapter import (
    MidjourneyAdapter,
    MidjourneyError,
    pool_prefix,
    return_code,
)
from omnirelay.settings import RoutingSettings
from omnirelay.store.files import FileStore

FAMILY = "midjourney"
# Route prefix -> the public pool model its channels serve, and the pool's mode name.
PREFIXES: dict[str, str] = {
    "mj": "midjourney",
    "mj-relax": "midjourney-relax",
    "mj-turbo": "midjourney-turbo",
}
MODES: dict[str, str] = {"midjourney": "FAST", "midjourney-relax": "RELAX", "midjourney-turbo": "TURBO"}
KINDS = ("imagine", "blend", "describe", "action", "modal")
PARENT_KINDS = frozenset({"action", "modal"})
STATUSES = ("NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS", "FAILURE", "SUCCESS", "CANCEL")
FETCH_TIMEOUT_S = 60.0
SUBMIT_DESCRIPTIONS = {1: "Submit success", 21: "Waiting for window confirm", 22: "Waiting for queue"}
# What the client sees of the upstream's ``properties``: never its Discord plumbing or callbacks.
HIDDEN_PROPERTIES = frozenset(
    {"notifyHook", "discordInstanceId", "discordChannelId", "instanceId", "nonce", "messageId",
     "progressMessageId", "flags", "messageHash", "messageContent", "accountId"}
)  # fmt: skip
SUBMIT_PROPERTIES = frozenset({"promptEn", "bannedWord", "finalPrompt", "remix", "numberOfQueues"})
# A button's customId -> the action it starts (shown before the upstream's first answer).
_BUTTON_ACTIONS = (
    ("upsample", "UPSCALE"),
    ("variation", "VARIATION"),
    ("reroll", "REROLL"),
    ("outpaint", "ZOOM"),
    ("customzoom", "ZOOM"),
    ("pan_", "PAN"),
    ("inpaint", "INPAINT"),
)
_KIND_ACTIONS = {"imagine": "IMAGINE", "blend": "BLEND", "describe": "DESCRIBE"}
# Gateway errors -> midjourney-proxy return codes (first match wins; anything else is 9).
ERROR_CODES: tuple[tuple[type[GatewayError], int], ...] = (
    (ContentRefused, 24),
    (RateLimited, 23),
    (NotFound, 3),
    (InsufficientBalance, 4),
    (PermissionDenied, 4),
    (PayloadTooLarge, 4),
    (InvalidRequest, 4),
    (UpstreamClientError, 4),
)
_TAGS = {"midjourney": ("Midjourney", "Midjourney绘图")}


def code_for_error(exc: GatewayError) -> int:
    """The midjourney-proxy return code a gateway error is reported with."""
    for cls, code in ERROR_CODES:
        if isinstance(exc, cls):
            return code
    return 9


def billing_model(pool: str, kind: str) -> str:
    """The price-book id a task of this pool and action is billed under."""
    return f"{pool}/{kind}"


@lru_cache(maxsize=1)
def _task_rows() -> tuple[dict[str, Any], ...]:
    text = resources.files("omnirelay.catalog").joinpath("tasks.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    rows = data.get("tasks", [])
    if not isinstance(rows, list):
        raise ValueError("catalog tasks.yaml: 'tasks' must be a list")
    return tuple(rows)


def load_task_prices() -> list[dict[str, Any]]:
    """catalog/tasks.yaml as price-book entries (merge them into the PriceBook's catalog list)."""
    entries = []
    for row in _task_rows():
        family = str(row.get("family", ""))
        tag, tag_cn = _TAGS.get(family, (family, family))
        entry: dict[str, Any] = {
            "id": str(row["id"]),
            "vendor": family,
            "category": "image",
            "tag": tag,
            "tag_cn": tag_cn,
            "description": str(row.get("description", "")),
            "source": str(row.get("source", "")),
        }
        if isinstance(row.get("price"), dict):
            entry["price"] = dict(row["price"])
        if row.get("free"):
            entry["free"] = True
        entries.append(entry)
    return entries


# --- the client's view ---------------------------------------------------------------------------


def _ms(ts: float | None) -> int | None:
    return int(ts * 1000) if ts is not None else None


def public_properties(props: Any, allowed: frozenset[str] | None = None) -> dict[str, Any]:
    if not isinstance(props, dict):
        return {}
    return {
        k: v
        for k, v in props.items()
        if k not in HIDDEN_PROPERTIES
        and (allowed is None or k in allowed)
        and not (isinstance(v, str) and v.startswith("data:"))
    }


def clean_upstream(obj: dict[str, Any]) -> dict[str, Any]:
    """The upstream task object as kept in the result: no inline images, no callbacks."""
    kept = {
        k: v
        for k, v in obj.items()
        if k not in ("notifyHook", "maskBase64", "base64", "base64Array")
        and not (isinstance(v, str) and v.startswith("data:"))
    }
    if "properties" in kept:
        kept["properties"] = public_properties(kept["properties"])
    return kept


def mj_status(task: Task) -> str:
    """The midjourney-proxy status of a task, from our state machine and the upstream's last word."""
    if task.status in ("pending", "submitting"):
        return "NOT_START"
    if task.status == "succeeded":
        return "SUCCESS"
    if task.status == "cancelled" or (
        task.status == "failed" and (task.error or {}).get("error") == "cancelled"
    ):
        return "CANCEL"
    if task.status == "failed":
        return "FAILURE"
    seen = str(task.upstream_state.get("status") or "")
    return seen if seen in ("NOT_START", "SUBMITTED", "MODAL", "IN_PROGRESS") else "SUBMITTED"


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _action_of(task: Task, upstream: dict[str, Any]) -> str:
    for value in (upstream.get("action"), task.upstream_state.get("action")):
        if isinstance(value, str) and value:
            return value
    kind = str(task.request.get("kind", ""))
    if kind in _KIND_ACTIONS:
        return _KIND_ACTIONS[kind]
    custom = str((task.request.get("fields") or {}).get("customId") or "").lower()
    for marker, action in _BUTTON_ACTIONS:
        if marker in custom:
            return action
    return kind.upper()


def task_object(task: Task) -> dict[str, Any]:
    """The midjourney-proxy task object of one of our tasks (fetch answer and webhook body)."""
    result = task.result or {}
    upstream = _mapping(result.get("upstream"))
    fields: dict[str, Any] = task.request.get("fields") or {}
    state = task.upstream_state
    status = mj_status(task)
    if status == "SUCCESS":
        progress = "100%"
    else:
        progress = str(upstream.get("progress") or state.get("progress") or "0%")
    submit = _mapping(state.get("submit"))
    properties = {
        **public_properties(submit.get("properties"), SUBMIT_PROPERTIES),
        **public_properties(upstream.get("properties")),
    }
    fail_reason = None
    if status in ("FAILURE", "CANCEL"):
        fail_reason = str((task.error or {}).get("message") or upstream.get("failReason") or "failed")
    started = result.get("started_ms") or state.get("started_ms")
    return {
        "id": task.id,
        "action": _action_of(task, upstream),
        "customId": str(fields.get("customId") or ""),
        "botType": str(upstream.get("botType") or fields.get("botType") or "MID_JOURNEY"),
        "mode": MODES.get(str(task.request.get("pool", "")), "FAST"),
        "status": status,
        "progress": progress,
        "prompt": str(upstream.get("prompt") or fields.get("prompt") or ""),
        "promptEn": str(upstream.get("promptEn") or ""),
        "description": str(upstream.get("description") or submit.get("description") or ""),
        "state": str(fields.get("state") or ""),
        "submitTime": _ms(task.created_at),
        "startTime": int(started) if isinstance(started, int | float) else None,
        "finishTime": _ms(task.completed_at),
        "imageUrl": result.get("imageUrl") or None,
        "failReason": fail_reason,
        "buttons": list(upstream.get("buttons") or []) if status == "SUCCESS" else [],
        "properties": properties,
    }


# --- the handler ---------------------------------------------------------------------------------


class _Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _failed(code: int, message: str, *, kind: str = "failed", channel: str | None = None) -> Finished:
    error = {
        "error": kind,
        "message": message,
        "error_type": kind,
        "mj_code": code,
        "mj_description": message,
    }
    return Finished(None, None, failed=True, error=error, channel=channel)


def _key_index(channel: Channel, key: str) -> int:
    try:
        return channel.config.api_keys.index(key)
    except ValueError:
        return 0


def _key_of(channel: Channel, state: dict[str, Any]) -> str:
    keys = channel.config.api_keys
    index = int(state.get("key", 0) or 0)
    return keys[index] if 0 <= index < len(keys) else channel.next_key()


class MidjourneyTaskHandler:
    family = FAMILY

    def __init__(
        self,
        *,
        images: ImageService,
        router: Router,
        routing: RoutingSettings,
        files: Callable[[], FileStore],
        parents: Callable[[str, int], Awaitable[Task | None]],
        fetch_timeout_s: float = FETCH_TIMEOUT_S,
    ) -> None:
        self._images = images
        self._router = router
        self._routing = routing
        self._files = files
        self._parents = parents
        self._fetch_timeout_s = fetch_timeout_s

    # --- submit ---------------------------------------------------------------------------------

    async def _parent(self, task: Task) -> Task:
        parent_id = str(task.request.get("parent") or "")
        parent = await self._parents(parent_id, task.account_id) if parent_id else None
        if parent is None or parent.family != FAMILY or not parent.upstream_task_id or not parent.channel:
            raise _Refusal(3, f"the task {parent_id or '(none)'} does not exist or has no upstream job")
        return parent

    async def _data_url(self, key: str) -> str:
        stored = await self._files().get(key)
        if stored is None:
            raise _Refusal(9, "an input image of this task is gone from storage")
        return ImageInput(stored.data, stored.media_type).data_url()

    async def _body(self, task: Task, parent: Task | None) -> dict[str, Any]:
        kind = str(task.request.get("kind"))
        fields: dict[str, Any] = task.request.get("fields") or {}
        images = [await self._data_url(str(key)) for key in task.request.get("images") or []]
        bot = str(fields.get("botType") or "MID_JOURNEY")
        if kind == "imagine":
            body: dict[str, Any] = {"prompt": fields.get("prompt", ""), "botType": bot}
            if images:
                body["base64Array"] = images
            return body
        if kind == "blend":
            return {"base64Array": images, "dimensions": fields.get("dimensions") or "SQUARE", "botType": bot}
        if kind == "describe":
            return {"base64": images[0] if images else "", "botType": bot}
        assert parent is not None and parent.upstream_task_id is not None
        if kind == "action":
            return {"taskId": parent.upstream_task_id, "customId": fields.get("customId", "")}
        if kind == "modal":
            body = {"taskId": parent.upstream_task_id}
            if fields.get("prompt"):
                body["prompt"] = fields["prompt"]
            mask = task.request.get("mask")
            if mask:
                body["maskBase64"] = await self._data_url(str(mask))
            return body
        raise _Refusal(4, f"unknown Midjourney action {kind!r}")

    async def _send(
        self, channel: Channel, prefix: str, key: str, kind: str, body: dict[str, Any], timeout_s: float
    ) -> Submitted:
        adapter = channel.adapter
        if not isinstance(adapter, MidjourneyAdapter):
            raise ProviderError(
                FailureKind.CONNECT, f"channel {channel.name} is not a Midjourney upstream", retryable=True
            )
        reply = await adapter.submit_job(prefix, kind, body, key, time.monotonic() + timeout_s)
        assert reply.result is not None
        submit = {
            "code": reply.code,
            "description": self._router.redactor.text(reply.description),
            "properties": public_properties(reply.properties, SUBMIT_PROPERTIES),
        }
        state: dict[str, Any] = {"key": _key_index(channel, key), "prefix": prefix, "submit": submit}
        if reply.code == 21 and kind == "action":  # the button opened a modal: billed at the modal
            state["status"] = "MODAL"
            state["modal"] = True
        return Submitted(reply.result, channel.name, state)

    async def submit(self, task: Task) -> Submitted | Finished:
        kind = str(task.request.get("kind"))
        pool = str(task.request.get("pool") or "midjourney")
        try:
            parent = await self._parent(task) if kind in PARENT_KINDS else None
            body = await self._body(task, parent)
        except _Refusal as exc:
            return _failed(exc.code, exc.message)
        refusals: list[ProviderError] = []

        async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> Submitted:
            try:
                prefix = pool_prefix(upstream_model)
                return await self._send(channel, prefix, channel.next_key(), kind, body, timeout_s)
            except ProviderError as exc:
                refusals.append(exc)
                raise

        log = AttemptLog()
        try:
            if parent is None:
                _, sent = await dispatch(self._router, self._routing, pool, attempt, log)
                return sent
            return await self._send_to_parent(parent, pool, kind, body, refusals)
        except GatewayError as exc:
            return Finished(
                None, None, failed=True, error=self._submit_error(exc, refusals), channel=log.channel
            )

    async def _send_to_parent(
        self,
        parent: Task,
        pool: str,
        kind: str,
        body: dict[str, Any],
        refusals: list[ProviderError],
    ) -> Submitted | Finished:
        """An action or modal continues the parent's job: on the channel (and key) that ran it."""
        channel = self._router.channel(parent.channel or "")
        if channel is None:
            return _failed(9, f"the upstream that ran task {parent.id} is no longer configured")
        try:
            if pool in channel.model_map:
                prefix = pool_prefix(channel.model_map[pool])
            else:
                prefix = str(parent.upstream_state.get("prefix") or "/mj")
            return await self._send(
                channel, prefix, _key_of(channel, parent.upstream_state), kind, body, channel.config.timeout_s
            )
        except ProviderError as exc:
            refusals.append(exc)
            error = to_gateway_error(exc, self._router.redactor)
            return Finished(
                None, None, failed=True, error=self._submit_error(error, refusals), channel=channel.name
            )

    def _submit_error(self, exc: GatewayError, refusals: list[ProviderError]) -> dict[str, Any]:
        last = refusals[-1] if refusals else None
        code = return_code(last) if last is not None else None
        description = exc.message
        properties: dict[str, Any] = {}
        if isinstance(last, MidjourneyError) and last.code == code:
            description = self._router.redactor.text(last.description)
            properties = public_properties(last.properties, SUBMIT_PROPERTIES)
        if code is None:
            code = code_for_error(exc)
        return {
            "error": exc.code,
            "message": exc.message,
            "error_type": exc.type,
            "err_code": exc.err_code,
            "mj_code": code,
            "mj_description": description,
            "mj_properties": properties,
        }

    # --- check ----------------------------------------------------------------------------------

    def _channel(self, task: Task) -> tuple[Channel, MidjourneyAdapter]:
        channel = self._router.channel(task.channel or "")
        if (
            channel is None
            or task.upstream_task_id is None
            or not isinstance(channel.adapter, MidjourneyAdapter)
        ):
            raise ProviderError(
                FailureKind.CONNECT, "the task's channel is gone; trying again later", retryable=True
            )
        return channel, channel.adapter

    async def check(self, task: Task) -> Pending | Finished:
        channel, adapter = self._channel(task)
        assert task.upstream_task_id is not None
        prefix = str(task.upstream_state.get("prefix") or "/mj")
        key = _key_of(channel, task.upstream_state)
        obj = await adapter.fetch_task(
            prefix, task.upstream_task_id, key, time.monotonic() + self._fetch_timeout_s
        )
        status = str(obj.get("status") or "").upper()
        state = dict(task.upstream_state)
        state["status"] = status
        state["progress"] = str(obj.get("progress") or "")[:16]
        if isinstance(obj.get("action"), str):
            state["action"] = obj["action"]
        if status == "MODAL":
            state["modal"] = True
        if status not in ("NOT_START", "SUBMITTED", "MODAL") and not state.get("started_ms"):
            state["started_ms"] = int(time.time() * 1000)
        if status == "SUCCESS":
            return await self._succeeded(task, obj, channel.name, state)
        if status in ("FAILURE", "CANCEL"):
            result = {
                "upstream": clean_upstream(obj),
                "imageUrl": None,
                "started_ms": state.get("started_ms"),
            }
            if status == "CANCEL":
                error = {
                    "error": "cancelled",
                    "message": "the upstream cancelled the task",
                    "error_type": "cancelled",
                }
            else:
                reason = self._router.redactor.text(str(obj.get("failReason") or "the upstream job failed"))
                error = {"error": "generation_failed", "message": reason, "error_type": "generation_failed"}
            return Finished(result, None, failed=True, error=error, channel=channel.name)
        progress = "MODAL" if status == "MODAL" else (state["progress"] or None)
        return Pending(progress=progress, state=state)

    async def _succeeded(
        self, task: Task, obj: dict[str, Any], channel: str, state: dict[str, Any]
    ) -> Finished:
        started = state.get("started_ms")
        result: dict[str, Any] = {"upstream": clean_upstream(obj), "imageUrl": None, "started_ms": started}
        image_url = obj.get("imageUrl")
        if isinstance(image_url, str) and image_url:
            # A download or check failure raises: a failed poll, tried again, not a verdict.
            stored = await self._images.store_results(
                [GeneratedImage(url=image_url)], str(task.request.get("public_base", ""))
            )
            result["imageUrl"] = stored[0].url
        elif str(obj.get("action") or "").upper() != "DESCRIBE":
            message = "the upstream finished without an image"
            error = {"error": "generation_failed", "message": message, "error_type": "generation_failed"}
            return Finished(result, None, failed=True, error=error, channel=channel)
        # An action that opened a modal is billed by the modal task that finished it.
        free = task.request.get("kind") == "action" and bool(state.get("modal"))
        return Finished(result, None if free else Usage(requests=1), channel=channel)

    # --- the rest of the protocol ---------------------------------------------------------------

    async def reconcile(self, task: Task) -> Submitted | None:
        return None  # midjourney-proxy has no lookup by our id: never resubmit

    async def cancel(self, task: Task) -> str | None:
        """Cancel upstream (core/tasks/cancel.py): None when done, else why not."""
        try:
            channel, adapter = self._channel(task)
        except ProviderError:
            return "the upstream of this task is no longer configured"
        assert task.upstream_task_id is not None
        prefix = str(task.upstream_state.get("prefix") or "/mj")
        key = _key_of(channel, task.upstream_state)
        try:
            await adapter.cancel_task(
                prefix, task.upstream_task_id, key, time.monotonic() + self._fetch_timeout_s
            )
        except MidjourneyError as exc:
            return f"the upstream refused to cancel: {self._router.redactor.text(exc.description)}"
        return None

    def webhook_payload(self, task: Task) -> dict[str, Any]:
        return task_object(task)
