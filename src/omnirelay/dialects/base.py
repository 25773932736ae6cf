"""The two faces of a chat format, as the chat engine (api/chat_engine.py) uses them.

An *inbound* dialect is a format clients speak to omnirelay (OpenAI Chat Completions, Anthropic
Messages, Gemini generateContent, OpenAI Responses). An *upstream* dialect is a format an upstream
speaks (OpenAI Chat Completions, Anthropic Messages, Gemini). When the client's format is the
upstream's, the engine passes bytes through and only reads usage (``usage_from_body`` and
``stream_parser().feed`` on the side). Otherwise it translates through ``core.chat`` types:

    inbound.parse -> ChatRequest -> upstream.to_body -> [upstream] -> upstream.from_body
        -> ChatResponse -> inbound.render
    streams: upstream.stream_parser().feed(event) -> [StreamEvent] -> inbound.stream_renderer().event

Every function here is pure: no I/O, no clock (ids and timestamps come in as arguments or from the
upstream), so each is tested against recorded JSON and event sequences.
"""

from __future__ import annotations

from typing import Any, Protocol

from omnirelay.core.chat import ChatRequest, ChatResponse, StreamEvent
from omnirelay.core.usage import Usage


class StreamRenderer(Protocol):
    """Canonical stream events -> this dialect's SSE bytes (complete events, ready to send)."""

    def event(self, event: StreamEvent) -> bytes: ...

    def close(self) -> bytes:
        """The final framing after the last event (OpenAI ``[DONE]``, Anthropic ``message_stop``...)."""
        ...

    def error(self, message: str, type: str) -> bytes:
        """An error event in this dialect, sent when the upstream fails after the stream began."""
        ...


class StreamParser(Protocol):
    """One upstream SSE event (bytes, without the blank-line separator) -> canonical events."""

    def feed(self, event: bytes) -> list[StreamEvent]: ...

    @property
    def usage(self) -> Usage | None:
        """Usage seen so far (the final figure once the stream is done)."""
        ...

    @property
    def done(self) -> bool:
        """True once the upstream's own end-of-stream marker was seen."""
        ...


class InboundDialect(Protocol):
    name: str

    def parse(self, body: dict[str, Any], *, model: str) -> ChatRequest:
        """Client body -> ChatRequest; raises omnirelay.errors.InvalidRequest with ``param`` set."""
        ...

    def render(self, response: ChatResponse, *, model: str) -> dict[str, Any]: ...

    def stream_renderer(
        self, *, model: str, response_id: str, created: int, include_usage: bool
    ) -> StreamRenderer: ...


class UpstreamDialect(Protocol):
    name: str

    def to_body(self, request: ChatRequest, *, upstream_model: str) -> dict[str, Any]: ...

    def from_body(self, data: dict[str, Any]) -> ChatResponse: ...

    def stream_parser(self) -> StreamParser: ...

    def usage_from_body(self, data: dict[str, Any]) -> Usage | None: ...
