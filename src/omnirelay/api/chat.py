"""POST /v1/chat/completions: OpenAI Chat Completions, passed through to OpenAI-compatible upstreams."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.common import client_key, gateway, read_body, request_id
from omnirelay.api.streaming import EventStreamResponse
from omnirelay.core.billing import CallRecord, Hold
from omnirelay.core.dispatch import AttemptLog, dispatch
from omnirelay.core.pricing import ModelInfo
from omnirelay.core.router import Channel
from omnirelay.core.tokens import count_text
from omnirelay.core.usage import Usage
from omnirelay.dialects.openai_chat import (
    StreamMeter,
    client_wants_usage,
    estimate_input_tokens,
    max_output_tokens,
    parse_chat_request,
    text_of_response,
    upstream_body,
    usage_from_response,
    wants_stream,
)
from omnirelay.errors import GatewayError, ModelNotFound, PermissionDenied
from omnirelay.gateway import Gateway
from omnirelay.providers.base import UpstreamReply
from omnirelay.providers.openai_compat.adapter import iter_sse_events

ENDPOINT = "/v1/chat/completions"


def _priced_model(gw: Gateway, model: str) -> ModelInfo:
    if not gw.router.has_model(model):
        raise ModelNotFound(
            f"The model `{model}` does not exist or you do not have access to it.", param="model"
        )
    info = gw.prices.get(model)
    if info is None or not info.billable:
        raise PermissionDenied(
            f"The model `{model}` has no price on this gateway, so it cannot be used; "
            "the operator must add a price or mark it free.",
            param="model",
        )
    return info


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    gw = gateway(request)
    started = time.time()
    key = gw.keys.authenticate(client_key(request.headers))
    raw = await read_body(request, gw.settings.max_body_bytes)
    body = parse_chat_request(raw)
    model = body["model"]
    info = _priced_model(gw, model)
    input_estimate = estimate_input_tokens(body)
    hold = gw.billing.reserve(key, gw.billing.estimate_chat(info, input_estimate, max_output_tokens(body)))
    stream = wants_stream(body)
    rec = CallRecord(request_id(request), ENDPOINT, model, stream=stream, started=started)
    attempts = AttemptLog()
    try:
        if stream:
            return await _stream(gw, raw, body, info, hold, rec, attempts, input_estimate)
        return await _complete(gw, raw, body, info, hold, rec, attempts, input_estimate)
    except BaseException as exc:
        if hold.open:
            _fail(gw, hold, rec, attempts, exc)
        raise


def _fail(gw: Gateway, hold: Hold, rec: CallRecord, attempts: AttemptLog, exc: BaseException) -> None:
    rec.attempts, rec.channel = attempts.attempts, attempts.channel
    rec.status = "error"
    if isinstance(exc, GatewayError):
        rec.http_status = exc.http_status
        rec.error = exc.message[:500]
    elif isinstance(exc, asyncio.CancelledError):
        rec.status, rec.http_status, rec.error = "cancelled", 499, "client disconnected"
    else:
        rec.http_status, rec.error = 500, type(exc).__name__
    gw.billing.settle(hold, None, None, rec)


async def _complete(
    gw: Gateway,
    raw: bytes,
    body: dict[str, Any],
    info: ModelInfo,
    hold: Hold,
    rec: CallRecord,
    attempts: AttemptLog,
    input_estimate: int,
) -> Response:
    async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> UpstreamReply:
        reply: UpstreamReply = await channel.adapter.chat(
            upstream_body(raw, body, upstream_model), channel.next_key(), timeout_s
        )
        return reply

    sent = time.perf_counter()
    _, reply = await dispatch(gw.router, gw.settings.routing, rec.model, attempt, attempts)
    elapsed = time.perf_counter() - sent
    gw.latency.record(rec.model, elapsed)
    usage, parsed = usage_from_response(reply.body)
    if usage is None:
        text = text_of_response(parsed) if parsed is not None else ""
        usage = Usage(input_uncached=input_estimate, output=count_text(text), estimated=True)
    rec.attempts, rec.channel = attempts.attempts, attempts.channel
    rec.first_byte_ms = int(elapsed * 1000)
    gw.billing.settle(hold, info.price, usage, rec)
    return Response(reply.body, status_code=reply.status, media_type=reply.content_type)


def _error_event(message: str, code: str) -> bytes:
    payload = {"error": {"message": message, "type": "upstream_error", "param": None, "code": code}}
    return b"data: " + orjson.dumps(payload) + b"\n\n"


async def _stream(
    gw: Gateway,
    raw: bytes,
    body: dict[str, Any],
    info: ModelInfo,
    hold: Hold,
    rec: CallRecord,
    attempts: AttemptLog,
    input_estimate: int,
) -> EventStreamResponse:
    async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> aiohttp.ClientResponse:
        resp: aiohttp.ClientResponse = await channel.adapter.open_stream(
            upstream_body(raw, body, upstream_model), channel.next_key(), timeout_s
        )
        return resp

    sent = time.perf_counter()
    channel, resp = await dispatch(gw.router, gw.settings.routing, rec.model, attempt, attempts)
    rec.attempts, rec.channel = attempts.attempts, attempts.channel
    meter = StreamMeter(client_wants_usage(body))

    async def events() -> AsyncGenerator[bytes, None]:
        finished = False
        try:
            async for group in iter_sse_events(resp):
                if rec.first_byte_ms is None:
                    first = time.perf_counter() - sent
                    rec.first_byte_ms = int(first * 1000)
                    gw.latency.record(rec.model, first)
                kept = [event for event in group if meter.feed(event)]
                if kept:
                    yield b"\n\n".join(kept) + b"\n\n"
            if not meter.done and meter.error is None:
                rec.status, rec.error = "error", "upstream ended the stream early"
                channel.breaker.record(False)
                yield _error_event(
                    "The upstream ended the stream before it was complete.", "stream_incomplete"
                )
            finished = True
        except (aiohttp.ClientError, TimeoutError):
            rec.status, rec.error = "error", "upstream stream failed"
            channel.breaker.record(False)
            yield _error_event("The upstream connection failed during the stream.", "stream_interrupted")
            finished = True
        finally:
            if finished:
                resp.release()
            else:
                # The client went away: closing the connection cancels the upstream generation.
                resp.close()
                rec.status, rec.http_status, rec.error = "cancelled", 499, "client disconnected"
            if meter.error is not None:
                rec.status, rec.error = "error", str(meter.error.get("message", "upstream error"))[:500]
            # Whatever was produced is billed: from the upstream's usage, else counted locally.
            gw.billing.settle(hold, info.price, meter.final_usage(input_estimate), rec)

    def on_close() -> None:
        if hold.open:  # the body never ran: the client left before the first chunk
            resp.close()
            rec.status, rec.http_status, rec.error = "cancelled", 499, "client disconnected"
            gw.billing.settle(hold, info.price, meter.final_usage(input_estimate), rec)

    return EventStreamResponse(events(), on_close=on_close)
