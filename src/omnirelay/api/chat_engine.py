"""The chat engine: one flow for every inbound chat format and every upstream format.

A route parses and checks its own format into a ``ChatCall``; the engine prices and reserves,
tries the candidates, and for each attempt decides by the channel's adapter:

- same format in and out: a byte pass-through (only the model, and for OpenAI streams the usage
  option, change); usage is read on the side;
- different formats: ``inbound.parse`` -> ``core.chat`` types -> ``upstream.to_body``; the answer comes
  back through ``upstream.from_body`` / ``stream_parser`` and ``inbound.render`` / ``stream_renderer``.

Whatever the formats, the money goes through ``Billing.settle`` once, with the canonical usage.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from starlette.requests import Request
from starlette.responses import Response

from omnirelay.api.common import request_id
from omnirelay.api.streaming import EventStreamResponse
from omnirelay.core.accounts import KeyState
from omnirelay.core.billing import CallRecord, Hold
from omnirelay.core.chat import (
    ChatRequest,
    StreamError,
    StreamEvent,
    StreamUsage,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from omnirelay.core.dispatch import AttemptLog, dispatch
from omnirelay.core.pricing import ModelInfo
from omnirelay.core.router import Channel
from omnirelay.core.tokens import count_request, count_text
from omnirelay.core.usage import Usage
from omnirelay.dialects import registry
from omnirelay.dialects.base import StreamRenderer
from omnirelay.dialects.openai_chat import StreamMeter, text_of_response, usage_from_response
from omnirelay.errors import GatewayError, ModelNotFound, PermissionDenied, UpstreamError
from omnirelay.gateway import Gateway
from omnirelay.providers.base import UpstreamReply
from omnirelay.providers.openai_compat.adapter import iter_sse_events

Passthrough = Callable[[bytes, dict[str, Any], str], bytes]


@dataclass(slots=True)
class ChatCall:
    """One client chat call, already checked by its route."""

    dialect: str  # the inbound format: openai_chat, anthropic, gemini, openai_responses
    raw: bytes
    body: dict[str, Any]
    model: str
    stream: bool
    endpoint: str
    passthrough: Passthrough | None  # same-format body rewrite; None: always translate
    include_usage: bool = True  # OpenAI streams: the client asked for the usage chunk
    forward_headers: Mapping[str, str] = field(default_factory=dict)
    input_estimate: int | None = None
    max_output: int | None = None
    _canonical: ChatRequest | None = None

    def canonical(self) -> ChatRequest:
        if self._canonical is None:
            parsed = registry.inbound(self.dialect).parse(self.body, model=self.model)
            self._canonical = dataclasses.replace(parsed, stream=self.stream)
        return self._canonical


@dataclass(slots=True)
class _Sent:
    """What an attempt sent: whether it was a pass-through, and the upstream's format."""

    upstream_dialect: str
    passthrough: bool
    reply: Any


def priced_model(gw: Gateway, model: str) -> ModelInfo:
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


async def run_chat(
    request: Request, gw: Gateway, key: KeyState, call: ChatCall
) -> Response | EventStreamResponse:
    started = time.time()
    info = priced_model(gw, call.model)
    if call.input_estimate is None:
        call.input_estimate = count_request(call.canonical())
    max_output = call.max_output if call.max_output is not None else call.canonical().max_tokens
    hold = gw.billing.reserve(key, gw.billing.estimate_chat(info, call.input_estimate, max_output))
    rec = CallRecord(request_id(request), call.endpoint, call.model, stream=call.stream, started=started)
    attempts = AttemptLog()
    try:
        if call.stream:
            return await _stream(gw, call, info, hold, rec, attempts)
        return await _complete(gw, call, info, hold, rec, attempts)
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


def _upstream_body(call: ChatCall, channel: Channel, upstream_model: str) -> tuple[bytes, str, bool]:
    adapter = channel.adapter
    target = getattr(adapter, "dialect", "openai_chat")
    if target == call.dialect and call.passthrough is not None:
        body = call.passthrough(call.raw, call.body, upstream_model)
        passthrough = True
    else:
        body = orjson.dumps(
            registry.upstream(target).to_body(call.canonical(), upstream_model=upstream_model)
        )
        passthrough = False
    prepare = getattr(adapter, "prepare", None)  # the OpenAI-compatible vendor table
    if prepare is not None:
        # The parsed form is handed over when the bytes are the client's own, to avoid a second parse.
        body = prepare(body, call.body if body is call.raw else None, call.stream)
    return body, target, passthrough


def _estimate(call: ChatCall, text: str) -> Usage:
    return Usage(input_uncached=call.input_estimate or 0, output=count_text(text), estimated=True)


@dataclass(slots=True)
class Completed:
    """A finished non-streaming call, rendered in the client's format, with what to bill."""

    body: bytes
    status: int
    content_type: str
    usage: Usage


async def complete_once(
    gw: Gateway, call: ChatCall, attempts: AttemptLog, rec: CallRecord | None = None
) -> Completed:
    """Route one non-streaming call and render the answer; no money moves here (the caller settles)."""

    async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> _Sent:
        body, target, passthrough = _upstream_body(call, channel, upstream_model)
        reply: UpstreamReply = await channel.adapter.chat(
            body, channel.next_key(), timeout_s, upstream_model=upstream_model, headers=call.forward_headers
        )
        return _Sent(target, passthrough, reply)

    sent_at = time.perf_counter()
    _, sent = await dispatch(gw.router, gw.settings.routing, call.model, attempt, attempts)
    elapsed = time.perf_counter() - sent_at
    gw.latency.record(call.model, elapsed)
    reply: UpstreamReply = sent.reply
    if rec is not None:
        rec.attempts, rec.channel = attempts.attempts, attempts.channel
        rec.first_byte_ms = int(elapsed * 1000)
    if sent.passthrough and sent.upstream_dialect == "openai_chat":
        usage, parsed = usage_from_response(reply.body)
        if usage is None:
            usage = _estimate(call, text_of_response(parsed) if parsed is not None else "")
        return Completed(reply.body, reply.status, reply.content_type, usage)
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        if sent.passthrough:
            return Completed(reply.body, reply.status, reply.content_type, _estimate(call, ""))
        raise UpstreamError("The upstream answered with a body that is not a JSON object.")
    upstream = registry.upstream(sent.upstream_dialect)
    if sent.passthrough:
        usage = upstream.usage_from_body(data) or _estimate(call, reply.body.decode(errors="replace"))
        return Completed(reply.body, reply.status, reply.content_type, usage)
    response = upstream.from_body(data)
    if not response.created:  # Anthropic and Gemini answers carry no timestamp
        response = dataclasses.replace(response, created=int(time.time()))
    if upstream.usage_from_body(data) is None:  # no usage upstream: count what came back
        response = dataclasses.replace(response, usage=_estimate(call, _text_of_parts(response.parts)))
    rendered = registry.inbound(call.dialect).render(response, model=call.model, **_render_extras(call))
    return Completed(orjson.dumps(rendered), 200, "application/json", response.usage)


async def _complete(
    gw: Gateway, call: ChatCall, info: ModelInfo, hold: Hold, rec: CallRecord, attempts: AttemptLog
) -> Response:
    done = await complete_once(gw, call, attempts, rec)
    gw.billing.settle(hold, info.price, done.usage, rec)
    return Response(done.body, status_code=done.status, media_type=done.content_type)


# Inbound formats whose answers repeat the request's settings (a Response echoes tools, instructions...).
_ECHOES_REQUEST = frozenset({"openai_responses"})


def _render_extras(call: ChatCall) -> dict[str, Any]:
    return {"request": call.canonical()} if call.dialect in _ECHOES_REQUEST else {}


def _text_of_parts(parts: list[Any]) -> str:
    out = []
    for part in parts:
        for name in ("text", "arguments", "name"):
            value = getattr(part, name, None)
            if isinstance(value, str):
                out.append(value)
    return "".join(out)


class _Collect:
    """Text of canonical events, for a local count when the upstream reports no usage."""

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, events: list[StreamEvent]) -> None:
        for event in events:
            if isinstance(event, TextDelta | ThinkingDelta):
                self.parts.append(event.text)
            elif isinstance(event, ToolCallDelta):
                self.parts.append(event.arguments)


async def _stream(
    gw: Gateway, call: ChatCall, info: ModelInfo, hold: Hold, rec: CallRecord, attempts: AttemptLog
) -> EventStreamResponse:
    async def attempt(channel: Channel, upstream_model: str, timeout_s: float) -> _Sent:
        body, target, passthrough = _upstream_body(call, channel, upstream_model)
        resp: aiohttp.ClientResponse = await channel.adapter.open_stream(
            body, channel.next_key(), timeout_s, upstream_model=upstream_model, headers=call.forward_headers
        )
        return _Sent(target, passthrough, resp)

    sent_at = time.perf_counter()
    channel, sent = await dispatch(gw.router, gw.settings.routing, call.model, attempt, attempts)
    resp: aiohttp.ClientResponse = sent.reply
    rec.attempts, rec.channel = attempts.attempts, attempts.channel
    made: list[StreamRenderer] = []

    def renderer() -> StreamRenderer:
        # Built only when needed: a same-format stream never renders, except an error event.
        if not made:
            made.append(
                registry.inbound(call.dialect).stream_renderer(
                    model=call.model,
                    response_id=rec.request_id,
                    created=int(rec.started),
                    include_usage=call.include_usage,
                    **_render_extras(call),
                )
            )
        return made[0]

    openai_meter = (
        StreamMeter(call.include_usage)
        if sent.passthrough and sent.upstream_dialect == "openai_chat"
        else None
    )
    parser = None if openai_meter is not None else registry.upstream(sent.upstream_dialect).stream_parser()
    collect = _Collect()
    upstream_failed: list[str] = []  # the upstream's own error event, already rendered to the client

    def final_usage() -> Usage:
        if openai_meter is not None:
            return openai_meter.final_usage(call.input_estimate or 0)
        assert parser is not None
        return parser.usage or _estimate(call, "".join(collect.parts))

    def upstream_done() -> bool:
        if openai_meter is not None:
            return openai_meter.done or openai_meter.error is not None
        assert parser is not None
        return parser.done

    def transform(group: list[bytes]) -> bytes:
        if openai_meter is not None:
            kept = [event for event in group if openai_meter.feed(event)]
            return b"\n\n".join(kept) + b"\n\n" if kept else b""
        assert parser is not None
        if sent.passthrough:
            for event in group:
                collect.add(parser.feed(event))
            return b"\n\n".join(group) + b"\n\n"
        out: list[bytes] = []
        for event in group:
            events = parser.feed(event)
            collect.add(events)
            for canonical in events:
                if isinstance(canonical, StreamError):
                    upstream_failed.append(canonical.message)
                out.append(renderer().event(canonical))
        return b"".join(out)

    async def events() -> AsyncGenerator[bytes, None]:
        finished = False
        try:
            async for group in iter_sse_events(resp):
                if rec.first_byte_ms is None:
                    first = time.perf_counter() - sent_at
                    rec.first_byte_ms = int(first * 1000)
                    gw.latency.record(call.model, first)
                chunk = transform(group)
                if chunk:
                    yield chunk
            if upstream_failed:
                rec.status, rec.error = "error", upstream_failed[0][:500]
            elif not upstream_done():
                rec.status, rec.error = "error", "upstream ended the stream early"
                channel.breaker.record(False)
                yield renderer().error(
                    "The upstream ended the stream before it was complete.", "upstream_error"
                )
            elif not sent.passthrough:
                if parser is not None and parser.usage is None:
                    # The upstream sent no usage: the client's format still gets a (counted) figure.
                    yield renderer().event(StreamUsage(final_usage()))
                yield renderer().close()
            finished = True
        except (aiohttp.ClientError, TimeoutError):
            rec.status, rec.error = "error", "upstream stream failed"
            channel.breaker.record(False)
            yield renderer().error("The upstream connection failed during the stream.", "upstream_error")
            finished = True
        finally:
            if finished:
                resp.release()
            else:
                resp.close()  # the client left: closing the connection cancels the generation
                rec.status, rec.http_status, rec.error = "cancelled", 499, "client disconnected"
            if openai_meter is not None and openai_meter.error is not None:
                rec.status, rec.error = (
                    "error",
                    str(openai_meter.error.get("message", "upstream error"))[:500],
                )
            upstream_error = getattr(parser, "error", None)  # an error event inside the upstream's stream
            if upstream_error:
                rec.status, rec.error = "error", str(upstream_error)[:500]
            gw.billing.settle(hold, info.price, final_usage(), rec)

    def on_close() -> None:
        if hold.open:  # the body never ran: the client left before the first chunk
            resp.close()
            rec.status, rec.http_status, rec.error = "cancelled", 499, "client disconnected"
            gw.billing.settle(hold, info.price, final_usage(), rec)

    return EventStreamResponse(events(), on_close=on_close)
