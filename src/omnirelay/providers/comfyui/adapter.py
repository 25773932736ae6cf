"""A ComfyUI-workflow service API in the style of RunningHub's "openapi" (docs/comfyui.md).

Every call is a POST under ``{base_url}/task/openapi/`` that carries the channel key as ``apiKey``
in its body and answers HTTP 200 with ``{"code": <int>, "msg": <str>, "data": ...}``; ``code`` 0 is
success, any other code is an error classified by ``CODE_RULES``.

- ``upload`` (multipart: ``apiKey``, ``fileType`` image|video, ``file``) → ``data.fileName``
- ``create`` ``{apiKey, workflowId, nodeInfoList: [{nodeId, fieldName, fieldValue}]}`` →
  ``data: {taskId, taskStatus}``
- ``status`` ``{apiKey, taskId}`` → ``data: "QUEUED" | "RUNNING" | "SUCCESS" | "FAILED"``, with
  ``queue`` (position among waiting tasks) beside it while queued, when the service knows it
- ``outputs`` ``{apiKey, taskId}`` → ``data: [{fileUrl, fileType, nodeId}]``; code 806 while the task
  runs, 807 with ``data.failedReason`` for a failed task

This is a task API, not an image model: capabilities are empty, so the image routes never pick a
``comfyui`` channel; the ComfyUI task handler (core/tasks/comfyui.py) drives it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.image_adapter import ImageAdapter

OK = 0
PARAMS_INVALID = 301
WORKFLOW_NOT_FOUND = 380
NO_BALANCE = 416
INVALID_KEY = 421
TASK_NOT_FOUND = 804
QUEUE_FULL = 805
TASK_RUNNING = 806
TASK_FAILED = 807

# code -> (HTTP status it stands for, retry on the next channel, the client's fault)
CODE_RULES: dict[int, tuple[int, bool, bool]] = {
    PARAMS_INVALID: (400, False, True),  # a node input the upstream refused (e.g. a file it cannot read)
    WORKFLOW_NOT_FOUND: (404, True, False),  # this channel's account lacks the workflow
    NO_BALANCE: (402, True, False),  # the channel's upstream account is out of credit
    INVALID_KEY: (401, True, False),  # the channel's key is wrong
    TASK_NOT_FOUND: (404, False, False),
    QUEUE_FULL: (429, True, False),  # the service's queue is full: another channel, or later
    TASK_RUNNING: (409, False, False),
    TASK_FAILED: (500, False, False),
}
UNKNOWN_CODE_RULE = (502, True, False)  # any other code: the service failed

STATES = frozenset({"QUEUED", "RUNNING", "SUCCESS", "FAILED"})
MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
DOWNLOAD_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class NodeInput:
    """One entry of ``nodeInfoList``: the value of one input of one workflow node."""

    node_id: str
    field_name: str
    value: str

    def wire(self) -> dict[str, str]:
        return {"nodeId": self.node_id, "fieldName": self.field_name, "fieldValue": self.value}


@dataclass(frozen=True, slots=True)
class TaskState:
    status: str  # QUEUED, RUNNING, SUCCESS or FAILED
    queue: int | None = None  # position among waiting tasks, when the service gives it


@dataclass(frozen=True, slots=True)
class OutputFile:
    url: str
    file_type: str  # the file's extension as the service reports it ("png", "mp4"), lower case
    node_id: str | None = None


def code_error(code: int, message: str, body: dict[str, Any] | None = None) -> ProviderError:
    status, retryable, client_fault = CODE_RULES.get(code, UNKNOWN_CODE_RULE)
    return ProviderError(
        FailureKind.HTTP,
        f"{message} (code {code})",
        status=status,
        body=body,
        retryable=retryable,
        client_fault=client_fault,
    )


def checked(body: Any) -> Any:
    """``data`` of a code-0 envelope; a ProviderError for every other answer."""
    if not isinstance(body, dict) or not isinstance(body.get("code"), int) or isinstance(body["code"], bool):
        raise ProviderError(
            FailureKind.HTTP, "the upstream answered without a {code, msg, data} envelope", retryable=True
        )
    code = body["code"]
    if code != OK:
        msg = body.get("msg")
        raise code_error(code, str(msg) if isinstance(msg, str) and msg else "upstream error", body)
    return body.get("data")


def parse_created(data: Any) -> str:
    task_id = data.get("taskId") if isinstance(data, dict) else None
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id:
        raise ProviderError(FailureKind.HTTP, "the upstream created a task without a taskId", retryable=True)
    return task_id


def parse_state(body: dict[str, Any], data: Any) -> TaskState:
    if not isinstance(data, str) or data.upper() not in STATES:
        raise ProviderError(
            FailureKind.HTTP, f"the upstream gave an unknown task status {data!r}", retryable=True
        )
    queue = body.get("queue")
    position = queue if isinstance(queue, int) and not isinstance(queue, bool) and queue >= 0 else None
    return TaskState(data.upper(), position)


def parse_outputs(data: Any) -> list[OutputFile]:
    if not isinstance(data, list):
        raise ProviderError(FailureKind.HTTP, "the upstream's outputs are not a list", retryable=True)
    files: list[OutputFile] = []
    for item in data:
        if not isinstance(item, dict):
            continue
        url = item.get("fileUrl")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            continue
        file_type = item.get("fileType")
        if not isinstance(file_type, str) or not file_type:
            file_type = url.rsplit("?", 1)[0].rsplit(".", 1)[-1] if "." in url.rsplit("/", 1)[-1] else ""
        node = item.get("nodeId")
        node_id = str(node) if isinstance(node, (str, int)) and not isinstance(node, bool) else None
        files.append(OutputFile(url, file_type.lower().lstrip("."), node_id))
    return files


def failed_reason(body: Any) -> str | None:
    """The message of a code-807 answer's ``data.failedReason``, if it has one."""
    data = body.get("data") if isinstance(body, dict) else None
    reason = data.get("failedReason") if isinstance(data, dict) else None
    if isinstance(reason, dict):
        for key in ("exception_message", "message"):
            value = reason.get(key)
            if isinstance(value, str) and value.strip():
                node = reason.get("node_name")
                return f"{value.strip()} (node {node})" if isinstance(node, str) and node else value.strip()
    if isinstance(reason, str) and reason.strip():
        return reason.strip()
    return None


class ComfyUIAdapter(ImageAdapter):
    id: ClassVar[str] = "comfyui"
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def classify(self, status: int, body: Any) -> tuple[bool, bool]:
        """An HTTP error: the envelope's code decides when it has a known one, else the status."""
        code = body.get("code") if isinstance(body, dict) else None
        if isinstance(code, int) and code in CODE_RULES:
            _, retryable, client_fault = CODE_RULES[code]
            return retryable, client_fault
        return super().classify(status, body)

    def message_of(self, body: Any, fallback: str) -> str:
        msg = body.get("msg") if isinstance(body, dict) else None
        return msg if isinstance(msg, str) and msg else super().message_of(body, fallback)

    def _url(self, name: str) -> str:
        return f"{self.base_url}/task/openapi/{name}"

    async def _post(self, name: str, body: dict[str, Any], deadline: float) -> tuple[dict[str, Any], Any]:
        answer = await self.call_json("POST", self._url(name), deadline=deadline, json=body)
        data = checked(answer)
        return answer, data

    async def upload(
        self, data: bytes, filename: str, media_type: str, file_type: str, api_key: str, deadline: float
    ) -> str:
        """Upload one input file; returns the name a node input refers to it by."""
        form = aiohttp.FormData()
        form.add_field("apiKey", api_key)
        form.add_field("fileType", file_type)
        form.add_field("file", data, filename=filename, content_type=media_type)
        answer = await self.call_json("POST", self._url("upload"), deadline=deadline, data=form)
        result = checked(answer)
        name = result.get("fileName") if isinstance(result, dict) else None
        if not isinstance(name, str) or not name:
            raise ProviderError(
                FailureKind.HTTP, "the upstream's upload answer has no fileName", retryable=True
            )
        return name

    async def create(self, workflow_id: str, inputs: list[NodeInput], api_key: str, deadline: float) -> str:
        """Start the workflow; returns the upstream task id."""
        body = {"apiKey": api_key, "workflowId": workflow_id, "nodeInfoList": [i.wire() for i in inputs]}
        _, data = await self._post("create", body, deadline)
        return parse_created(data)

    async def status(self, task_id: str, api_key: str, deadline: float) -> TaskState:
        answer, data = await self._post("status", {"apiKey": api_key, "taskId": task_id}, deadline)
        return parse_state(answer, data)

    async def outputs(self, task_id: str, api_key: str, deadline: float) -> list[OutputFile]:
        _, data = await self._post("outputs", {"apiKey": api_key, "taskId": task_id}, deadline)
        return parse_outputs(data)

    async def failure_reason(self, task_id: str, api_key: str, deadline: float) -> str | None:
        """Why a FAILED task failed (``outputs`` answers code 807 with the reason); None if unsaid."""
        try:
            answer = await self.call_json(
                "POST", self._url("outputs"), deadline=deadline, json={"apiKey": api_key, "taskId": task_id}
            )
        except ProviderError:
            return None
        return failed_reason(answer)

    async def download(self, url: str, deadline: float, limit: int = MAX_DOWNLOAD_BYTES) -> bytes:
        """A result file from the service's own URL (trusted: it came from the configured channel)."""
        if not url.startswith(("http://", "https://")):
            raise ProviderError(
                FailureKind.HTTP, "the upstream gave a result URL that is not http(s)", retryable=True
            )
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ProviderError(FailureKind.TIMEOUT, "downloading the result timed out", retryable=True)
        timeout = aiohttp.ClientTimeout(total=remaining, connect=min(self.connect_timeout_s, remaining))
        try:
            async with self.http.get(url, timeout=timeout) as resp:
                if resp.status != 200:
                    raise ProviderError(
                        FailureKind.HTTP,
                        f"downloading the result failed (HTTP {resp.status})",
                        status=resp.status,
                        retryable=True,
                    )
                chunks: list[bytes] = []
                size = 0
                async for chunk in resp.content.iter_chunked(DOWNLOAD_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise ProviderError(
                            FailureKind.GENERATION,
                            "the result file is larger than the gateway accepts",
                            retryable=False,
                        )
                    chunks.append(chunk)
                return b"".join(chunks)
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise ProviderError(
                FailureKind.TIMEOUT, "downloading the result timed out", retryable=True
            ) from exc
        except aiohttp.ClientError as exc:
            raise ProviderError(
                FailureKind.CONNECT, f"downloading the result failed ({type(exc).__name__})", retryable=True
            ) from exc
