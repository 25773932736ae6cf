"""Async chat: ``POST /v1/chat/completions?async=true[&callback=URL]`` and ``GET /v1/async_result``.

The call becomes a durable task. The worker makes the (non-streaming) chat call once through the chat
engine, keeps the answer, and settles; the optional callback is the engine's signed webhook.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from starlette.requests import Request

from omnirelay.api.chat_engine import ChatCall, complete_once, priced_model
from omnirelay.api.common import JSONResponse, client_key, gateway, request_id
from omnirelay.core.dispatch import AttemptLog
from omnirelay.core.tasks.model import Finished, Pending, Submitted, Task
from omnirelay.dialects.openai_chat import estimate_input_tokens, max_output_tokens, upstream_body
from omnirelay.errors import GatewayError, InvalidRequest, NotFound
from omnirelay.gateway import Gateway

FAMILY = "chat_async"
_STATUS = {"pending": "pending", "submitting": "processing", "processing": "processing",
           "succeeded": "completed", "failed": "failed", "cancelled": "failed"}  # fmt: skip


def _passthrough(raw: bytes, body: dict[str, Any], upstream_model: str) -> bytes:
    return upstream_body(raw, body, upstream_model)


def _call(body: dict[str, Any]) -> ChatCall:
    body = {**body, "stream": False}
    body.pop("stream_options", None)
    raw = orjson.dumps(body)
    return ChatCall(
        dialect="openai_chat",
        raw=raw,
        body=body,
        model=body["model"],
        stream=False,
        endpoint="/v1/chat/completions?async",
        passthrough=_passthrough,
        input_estimate=estimate_input_tokens(body),
        max_output=max_output_tokens(body) or 0,
    )


async def submit(request: Request, key: Any, body: dict[str, Any]) -> JSONResponse:
    gw = gateway(request)
    callback = request.query_params.get("callback") or None
    call = _call(body)
    info = priced_model(gw, call.model)
    hold = gw.billing.estimate_chat(info, call.input_estimate or 0, call.max_output)
    task = await gw.tasks.create(
        key=key,
        family=FAMILY,
        kind="chat",
        model=call.model,
        hold=hold,
        request={"body": call.body},
        request_id=request_id(request),
        webhook_url=callback,
    )
    return JSONResponse({"task_id": task.id, "status": "pending"})


def result_view(task: Task, *, extract: bool) -> dict[str, Any]:
    """``status_code`` is the upstream's HTTP status, ``data`` its answer, ``err`` the failure."""
    result = task.result or {}
    view: dict[str, Any] = {
        "task_id": task.id,
        "status": _STATUS.get(task.status, task.status),
        "status_code": result.get("status_code"),
        "content_type": result.get("content_type"),
        "data": result.get("data"),
        "err": (task.error or {}).get("message", "") if task.error else "",
    }
    if extract:
        view["extracted_content"] = _assistant_text(result.get("data"))
    return view


def _assistant_text(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    parts = []
    for choice in data.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            parts.append(message["content"])
    return "".join(parts)


async def async_result(request: Request) -> JSONResponse:
    gw = gateway(request)
    key = gw.keys.authenticate(client_key(request.headers))
    task_id = request.query_params.get("task_id")
    if not task_id:
        raise InvalidRequest("query parameter 'task_id' is required", param="task_id")
    task = await gw.tasks.get(task_id, key.account.id)
    if task is None or task.family != FAMILY:
        raise NotFound("There is no such task.")
    extract = request.query_params.get("llm_content_extract", "").lower() in ("true", "1")
    return JSONResponse(result_view(task, extract=extract))


class AsyncChatHandler:
    family = FAMILY

    def __init__(self, gw: Gateway) -> None:
        self._gw = gw

    async def submit(self, task: Task) -> Submitted | Finished:
        call = _call(task.request["body"])
        attempts = AttemptLog()
        started = time.time()
        try:
            done = await complete_once(self._gw, call, attempts)
        except GatewayError as exc:
            error = {
                "error": exc.code,
                "message": exc.message,
                "error_type": exc.type,
                "err_code": exc.err_code,
            }
            result = {"status_code": exc.http_status, "content_type": "application/json", "data": None}
            return Finished(result, None, failed=True, error=error, channel=attempts.channel)
        try:
            data: Any = orjson.loads(done.body)
        except orjson.JSONDecodeError:
            data = done.body.decode(errors="replace")
        result = {"status_code": done.status, "content_type": done.content_type, "data": data,
                  "elapsed_s": round(time.time() - started, 3)}  # fmt: skip
        return Finished(result, done.usage, channel=attempts.channel)

    async def check(self, task: Task) -> Pending | Finished:
        raise AssertionError("async chat finishes in its submit step")  # pragma: no cover

    async def reconcile(self, task: Task) -> Submitted | None:
        return None

    def webhook_payload(self, task: Task) -> dict[str, Any]:
        return result_view(task, extract=True)
