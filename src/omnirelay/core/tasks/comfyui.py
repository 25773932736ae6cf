"""302.AI-ComfyUI workflows as durable tasks: the workflow table, and the task handler.

The create route (api/comfyui.py) checks the form against the workflow's row, stores the input files in
the gateway's file store and writes a task whose request is ``{workflow, fields, files, file_types,
public_base}``. The worker then calls ``submit`` once: the files are uploaded to a ``comfyui`` channel
serving the model ``comfyui-<workflow>`` and the workflow is started there with each form field fed to
its upstream node input (the row's ``node`` / ``node_field``). ``check`` follows the upstream status
(QUEUED → RUNNING → SUCCESS | FAILED); on SUCCESS the result files are downloaded, checked and stored,
and the task's result is the 302 output shape with the gateway's own file URLs.
"""

from __future__ import annotations

import contextlib
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Literal

import yaml

from omnirelay.core.dispatch import AttemptLog, dispatch
from omnirelay.core.images import GeneratedImage
from omnirelay.core.imaging import ImageService
from omnirelay.core.router import Channel, Router
from omnirelay.core.tasks.model import Finished, Pending, Submitted, Task
from omnirelay.core.usage import Usage
from omnirelay.errors import GatewayError, UpstreamError
from omnirelay.providers.base import FailureKind, ProviderError
from omnirelay.providers.comfyui.adapter import (
    TASK_NOT_FOUND,
    TASK_RUNNING,
    ComfyUIAdapter,
    NodeInput,
    OutputFile,
)
from omnirelay.settings import RoutingSettings
from omnirelay.store.files import FileStore

FAMILY = "comfyui"
MODEL_PREFIX = "comfyui-"
# Consecutive "task not found" answers before the task is declared lost (failed, refunded).
MAX_MISSING = 3
RESULT_DOWNLOAD_S = 120.0
MAX_VIDEO_RESULT_BYTES = 256 * 1024 * 1024

IMAGE_TYPES = frozenset({"png", "jpg", "jpeg", "webp", "gif", "bmp"})
VIDEO_TYPES = frozenset({"mp4", "mov", "m4v", "webm"})
# Media type of an input file -> the extension of its upload's file name.
UPLOAD_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
}
VIDEO_MEDIA_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
_QUICKTIME_ATOMS = (b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot")


# --- the workflow table ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    kind: Literal["file", "text"]
    required: bool
    node: str
    node_field: str
    media: Literal["image", "video"] | None = None  # files only
    default: str | None = None
    values: tuple[str, ...] | None = None
    pattern: str | None = None
    hint: str = ""  # what a valid value looks like, for the 422 message
    max_length: int = 2000


@dataclass(frozen=True, slots=True)
class Workflow:
    id: str
    slug: str
    path: str  # create-task or create-task-upload-mask
    title: str
    output: Literal["object", "list"]
    output_kind: Literal["image", "video"]
    fields: tuple[FormField, ...]
    workflow_id: str
    object_outputs: dict[str, str]  # object shape: 302 key -> upstream output node
    list_outputs: tuple[str, ...]  # list shape: upstream output nodes
    price: str  # USD per finished task
    source: str = ""
    notes: str = ""

    @property
    def model(self) -> str:
        return f"{MODEL_PREFIX}{self.id}"

    @property
    def create_route(self) -> str:
        return f"/302/comfyui/{self.slug}/{self.path}"

    @property
    def status_route(self) -> str:
        return f"/302/comfyui/{self.slug}/check-task-status"

    def field(self, name: str) -> FormField | None:
        return next((f for f in self.fields if f.name == name), None)

    def empty_output(self) -> Any:
        return {"comparisonUrl": "", "resultUrl": ""} if self.output == "object" else []


def _field_from(row: dict[str, Any], where: str) -> FormField:
    name = row.get("name")
    kind = row.get("kind")
    if not isinstance(name, str) or not name or kind not in ("file", "text"):
        raise ValueError(f"{where}: a field needs a name and kind file or text")
    media = row.get("media")
    if kind == "file" and media not in ("image", "video"):
        raise ValueError(f"{where}.{name}: a file field needs media image or video")
    values = row.get("values")
    default = row.get("default")
    if values is not None and (not isinstance(values, list) or not all(isinstance(v, str) for v in values)):
        raise ValueError(f"{where}.{name}: values must be a list of strings")
    if default is not None and values is not None and default not in values:
        raise ValueError(f"{where}.{name}: the default is not one of the values")
    pattern = row.get("pattern")
    if pattern is not None:
        re.compile(str(pattern))
    node, node_field = row.get("node"), row.get("node_field")
    if not isinstance(node, str) or not node or not isinstance(node_field, str) or not node_field:
        raise ValueError(f"{where}.{name}: node and node_field (strings) are required")
    return FormField(
        name=name,
        kind=kind,
        required=bool(row.get("required", False)),
        node=node,
        node_field=node_field,
        media=media if kind == "file" else None,
        default=str(default) if default is not None else None,
        values=tuple(values) if values is not None else None,
        pattern=str(pattern) if pattern is not None else None,
        hint=str(row.get("hint", "")),
        max_length=int(row.get("max_length", 2000)),
    )


def workflow_from_row(row: dict[str, Any]) -> Workflow:
    wid = row.get("id")
    if not isinstance(wid, str) or not wid:
        raise ValueError("comfyui.yaml: a workflow without an id")
    where = f"comfyui.yaml {wid}"
    output, kind = row.get("output"), row.get("output_kind")
    if output not in ("object", "list") or kind not in ("image", "video"):
        raise ValueError(f"{where}: output must be object or list, output_kind image or video")
    path = row.get("path", "create-task")
    if path not in ("create-task", "create-task-upload-mask"):
        raise ValueError(f"{where}: path must be create-task or create-task-upload-mask")
    upstream = row.get("upstream") or {}
    outputs = upstream.get("outputs")
    object_outputs: dict[str, str] = {}
    list_outputs: tuple[str, ...] = ()
    if output == "object":
        if not isinstance(outputs, dict) or set(outputs) != {"resultUrl", "comparisonUrl"}:
            raise ValueError(f"{where}: an object output maps resultUrl and comparisonUrl to nodes")
        object_outputs = {str(k): str(v) for k, v in outputs.items()}
    else:
        if not isinstance(outputs, list) or not outputs:
            raise ValueError(f"{where}: a list output names its output nodes")
        list_outputs = tuple(str(v) for v in outputs)
    fields = tuple(_field_from(f, where) for f in row.get("fields") or [])
    if len({f.name for f in fields}) != len(fields):
        raise ValueError(f"{where}: duplicate field names")
    price = (row.get("price") or {}).get("per_task")
    if price is None:
        raise ValueError(f"{where}: price.per_task is required")
    return Workflow(
        id=wid,
        slug=str(row.get("slug") or wid),
        path=str(path),
        title=str(row.get("title", wid)),
        output=output,
        output_kind=kind,
        fields=fields,
        workflow_id=str(upstream.get("workflow_id") or ""),
        object_outputs=object_outputs,
        list_outputs=list_outputs,
        price=str(price),
        source=str(row.get("source", "")),
        notes=str(row.get("notes", "")),
    )


@lru_cache(maxsize=1)
def load_workflows() -> dict[str, Workflow]:
    """The shipped table (catalog/comfyui.yaml), by workflow id."""
    text = resources.files("omnirelay.catalog").joinpath("comfyui.yaml").read_text(encoding="utf-8")
    rows = (yaml.safe_load(text) or {}).get("workflows", [])
    if not isinstance(rows, list):
        raise ValueError("catalog comfyui.yaml: 'workflows' must be a list")
    table: dict[str, Workflow] = {}
    routes: set[str] = set()
    for row in rows:
        workflow = workflow_from_row(row)
        if workflow.id in table or workflow.create_route in routes:
            raise ValueError(f"comfyui.yaml: {workflow.id} is listed twice")
        table[workflow.id] = workflow
        routes.add(workflow.create_route)
    return table


def price_entries() -> list[dict[str, Any]]:
    """The workflows as price-book entries: one finished task is one ``per_request`` unit."""
    return [
        {
            "id": w.model,
            "vendor": "comfyui",
            "category": "comfyui",
            "tag": "ComfyUI",
            "tag_cn": "ComfyUI工作流",
            "description": w.title,
            "source": w.source,
            "price": {"per_request": w.price},
        }
        for w in load_workflows().values()
    ]


# --- files ----------------------------------------------------------------------------------------


def video_container(data: bytes) -> str | None:
    """``mp4``, ``mov`` or ``webm`` from the file's first bytes; None when it is none of them."""
    head = data[:64]
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS:
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3" and b"webm" in data[:4096]:
        return "webm"
    return None


def media_kind(file_type: str) -> str | None:
    ext = file_type.lower().lstrip(".")
    if ext in IMAGE_TYPES:
        return "image"
    if ext in VIDEO_TYPES:
        return "video"
    return None


def node_inputs(workflow: Workflow, fields: dict[str, str], uploaded: dict[str, str]) -> list[NodeInput]:
    """``nodeInfoList``: each text field and each uploaded file to its node input, in table order."""
    inputs: list[NodeInput] = []
    for spec in workflow.fields:
        value = uploaded.get(spec.name) if spec.kind == "file" else fields.get(spec.name)
        if value is not None:
            inputs.append(NodeInput(spec.node, spec.node_field, value))
    return inputs


def pick_outputs(workflow: Workflow, files: list[OutputFile]) -> dict[str, OutputFile] | list[OutputFile]:
    """Which upstream files make the 302 output: by output node, else by kind and order."""
    of_kind = [f for f in files if media_kind(f.file_type) == workflow.output_kind]
    if workflow.output == "list":
        by_node = [f for f in of_kind if f.node_id in workflow.list_outputs]
        return by_node or of_kind
    picked: dict[str, OutputFile] = {}
    for key, node in workflow.object_outputs.items():
        found = next((f for f in of_kind if f.node_id == node), None)
        if found is not None:
            picked[key] = found
    rest = [f for f in of_kind if f not in picked.values()]
    for key in workflow.object_outputs:  # resultUrl first: the table lists it first
        if key not in picked and rest:
            picked[key] = rest.pop(0)
    return picked


# --- the 302 views --------------------------------------------------------------------------------

_STATES = {"pending": "QUEUED", "submitting": "QUEUED", "succeeded": "SUCCESS", "failed": "FAILED",
           "cancelled": "FAILED"}  # fmt: skip


def status_view(task: Task) -> dict[str, Any]:
    """``{"code": 0, "msg": "success", "data": <STATUS>, "queue": <int>, "output": <shape>}``."""
    workflow = load_workflows().get(str(task.request.get("workflow", "")))
    state = task.upstream_state or {}
    if task.status == "processing":
        status = str(state.get("status") or "QUEUED")
        queue = state.get("queue") if status == "QUEUED" else 0
    else:
        status = _STATES.get(task.status, "QUEUED")
        queue = 0
    output: Any = workflow.empty_output() if workflow is not None else []
    if status == "SUCCESS" and task.result is not None:
        output = task.result.get("output", output)
    body: dict[str, Any] = {
        "code": 0,
        "msg": "success",
        "data": status,
        "queue": queue if isinstance(queue, int) else 0,
        "output": output,
    }
    if status == "FAILED" and task.error:
        body["error"] = {"message": task.error.get("message", ""), "type": task.error.get("error_type", "")}
    return body


# --- the handler ----------------------------------------------------------------------------------


class _BadResult(Exception):
    """The upstream's result files are not what the workflow makes: a verdict, not a retry."""


class ComfyUITaskHandler:
    family = FAMILY

    def __init__(
        self,
        *,
        images: ImageService,
        router: Router,
        routing: RoutingSettings,
        files: Any,
        workflows: dict[str, Workflow] | None = None,
    ) -> None:
        self._images = images
        self._router = router
        self._routing = routing
        self._files = files
        self.workflows = workflows if workflows is not None else load_workflows()

    def _workflow(self, task: Task) -> Workflow:
        workflow = self.workflows.get(str(task.request.get("workflow", "")))
        if workflow is None:
            raise GatewayError(f"the ComfyUI workflow of this task ({task.request.get('workflow')}) is gone")
        return workflow

    async def _inputs(self, task: Task) -> list[tuple[str, bytes, str]]:
        """(field, bytes, media type) of every input file, from the gateway's file store."""
        store: FileStore = self._files()
        types: dict[str, str] = task.request.get("file_types") or {}
        found: list[tuple[str, bytes, str]] = []
        for name, key in (task.request.get("files") or {}).items():
            stored = await store.get(str(key))
            if stored is None:
                raise GatewayError(f"the input file '{name}' of this task is gone from storage")
            found.append((str(name), stored.data, str(types.get(name) or stored.media_type)))
        return found

    async def submit(self, task: Task) -> Submitted | Finished:
        workflow = self._workflow(task)
        inputs = await self._inputs(task)
        fields = {str(k): str(v) for k, v in (task.request.get("fields") or {}).items()}
        log = AttemptLog()

        async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> Submitted:
            adapter = channel.adapter
            if not isinstance(adapter, ComfyUIAdapter):
                raise ProviderError(
                    FailureKind.CONNECT, f"channel {channel.name} is not a ComfyUI service", retryable=True
                )
            deadline = time.monotonic() + timeout_s
            key = channel.next_key()
            uploaded: dict[str, str] = {}
            for name, data, media_type in inputs:
                spec = workflow.field(name)
                kind = spec.media if spec is not None and spec.media else "image"
                filename = f"{name}.{UPLOAD_EXTENSIONS.get(media_type, 'bin')}"
                uploaded[name] = await adapter.upload(data, filename, media_type, kind, key, deadline)
            # A channel that maps the model to another name names its own workflow id.
            workflow_id = workflow.workflow_id if upstream_model == workflow.model else upstream_model
            upstream_id = await adapter.create(
                workflow_id, node_inputs(workflow, fields, uploaded), key, deadline
            )
            state = {"key": _key_index(channel, key), "status": "QUEUED", "queue": 0}
            return Submitted(upstream_id, channel.name, state)

        try:
            _, sent = await dispatch(self._router, self._routing, task.model, attempt, log)
        except GatewayError as exc:
            return Finished(None, None, failed=True, error=_error_of(exc), channel=log.channel)
        finally:
            # A task is submitted at most once (reconcile never resends), so its inputs (faces, often)
            # are not needed past this point and are not kept.
            await self._drop_inputs(task)
        return sent

    async def _drop_inputs(self, task: Task) -> None:
        store: FileStore = self._files()
        for key in (task.request.get("files") or {}).values():
            with contextlib.suppress(Exception):
                await store.delete(str(key))

    async def check(self, task: Task) -> Pending | Finished:
        channel = self._router.channel(task.channel or "")
        adapter = channel.adapter if channel is not None else None
        if channel is None or task.upstream_task_id is None or not isinstance(adapter, ComfyUIAdapter):
            raise ProviderError(
                FailureKind.CONNECT, "the task's channel is gone; trying again later", retryable=True
            )
        keys = channel.config.api_keys
        state = dict(task.upstream_state or {})
        index = int(state.get("key", 0))
        key = keys[index] if 0 <= index < len(keys) else channel.next_key()
        deadline = time.monotonic() + min(channel.config.timeout_s, 60.0)
        try:
            answer = await adapter.status(task.upstream_task_id, key, deadline)
        except ProviderError as exc:
            if _code(exc) != TASK_NOT_FOUND:
                raise
            missing = int(state.get("missing", 0)) + 1
            if missing >= MAX_MISSING:
                error = _failure("the upstream no longer knows this task", "task_lost")
                return Finished(None, None, failed=True, error=error, channel=channel.name)
            return Pending(progress=task.progress, state={**state, "missing": missing})
        state.pop("missing", None)
        if answer.status == "QUEUED":
            progress = f"queue:{answer.queue}" if answer.queue is not None else None
            return Pending(progress, {**state, "status": "QUEUED", "queue": answer.queue or 0})
        if answer.status == "RUNNING":
            return Pending("running", {**state, "status": "RUNNING", "queue": 0})
        if answer.status == "FAILED":
            reason = await adapter.failure_reason(task.upstream_task_id, key, deadline)
            message = f"the ComfyUI workflow failed: {reason}" if reason else "the ComfyUI workflow failed"
            return Finished(None, None, failed=True, error=_failure(message), channel=channel.name)
        try:
            files = await adapter.outputs(task.upstream_task_id, key, deadline)
        except ProviderError as exc:
            if _code(exc) == TASK_RUNNING:  # the status ran ahead of the outputs: ask again later
                return Pending("running", {**state, "status": "RUNNING", "queue": 0})
            raise
        try:
            return await self._finished(task, self._workflow(task), adapter, files, channel.name)
        except _BadResult as exc:
            return Finished(None, None, failed=True, error=_failure(str(exc)), channel=channel.name)

    async def _finished(
        self, task: Task, workflow: Workflow, adapter: ComfyUIAdapter, files: list[OutputFile], channel: str
    ) -> Finished:
        picked = pick_outputs(workflow, files)
        names = list(picked) if isinstance(picked, dict) else []
        chosen = [picked[n] for n in names] if isinstance(picked, dict) else picked
        if not chosen or (isinstance(picked, dict) and "resultUrl" not in picked):
            raise _BadResult(f"the ComfyUI workflow finished without a result {workflow.output_kind}")
        # Everything is downloaded before anything is stored: a failed download is retried whole.
        deadline = time.monotonic() + RESULT_DOWNLOAD_S
        try:
            blobs = [await adapter.download(f.url, deadline, MAX_VIDEO_RESULT_BYTES) for f in chosen]
        except ProviderError as exc:
            if exc.kind is FailureKind.GENERATION:
                raise _BadResult(exc.message) from exc
            raise
        base = str(task.request.get("public_base", "")).rstrip("/")
        urls = await self._store(workflow, blobs, base)
        output: Any = urls
        if isinstance(picked, dict):
            named = dict(zip(names, urls, strict=True))
            output = {"comparisonUrl": named.get("comparisonUrl", ""), "resultUrl": named["resultUrl"]}
        result = {
            "output": output,
            "upstream_outputs": [{"fileType": f.file_type, "nodeId": f.node_id} for f in files],
        }
        return Finished(result, Usage(requests=1), channel=channel, upstream_task_id=task.upstream_task_id)

    async def _store(self, workflow: Workflow, blobs: list[bytes], base: str) -> list[str]:
        if workflow.output_kind == "image":
            try:
                stored = await self._images.store_results([GeneratedImage(data=b) for b in blobs], base)
            except UpstreamError as exc:  # the bytes are there and are not an image
                raise _BadResult(exc.message) from exc
            return [image.url for image in stored]
        store: FileStore = self._files()
        urls: list[str] = []
        for data in blobs:
            container = video_container(data)
            if container is None:
                raise _BadResult("the ComfyUI workflow returned a result that is not a video")
            media_type = "video/webm" if container == "webm" else "video/mp4"
            key = await store.put(data, media_type)
            urls.append(f"{base}/files/{key}")
        return urls

    async def reconcile(self, task: Task) -> Submitted | None:
        return None  # the service has no lookup by our id: an interrupted submit is never resent

    def webhook_payload(self, task: Task) -> dict[str, Any]:
        return {**status_view(task), "taskId": task.id}


def _code(exc: ProviderError) -> int | None:
    code = (exc.body or {}).get("code")
    return code if isinstance(code, int) else None


def _key_index(channel: Channel, key: str) -> int:
    try:
        return channel.config.api_keys.index(key)
    except ValueError:
        return 0


def _failure(message: str, kind: str = "generation_failed") -> dict[str, Any]:
    return {"error": kind, "message": message, "error_type": kind}


def _error_of(exc: GatewayError) -> dict[str, Any]:
    return {"error": exc.code, "message": exc.message, "error_type": exc.type, "err_code": exc.err_code}
