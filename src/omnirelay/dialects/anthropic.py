"""Anthropic Messages on the wire (``POST /v1/messages``): both faces of the format.

- ``AnthropicInbound``: a client speaking Anthropic Messages to omnirelay (parse its request, render
  the answer as a ``message`` object or as Anthropic's SSE event sequence);
- ``AnthropicUpstream``: an upstream speaking Anthropic Messages (build its request body, read its
  answer and its SSE events);
- ``passthrough_body``: the same-format rewrite (only the model name changes);
- ``usage_from_anthropic``: Anthropic's usage block -> ``core.usage.Usage``.

Mapping tables, defaults and what cannot be carried: docs/providers/anthropic.md. Everything here is
pure: no I/O and no clock.
"""

from __future__ import annotations

import re
from typing import Any, Final, NoReturn

import orjson

from omnirelay.core.chat import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    Part,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamStart,
    StreamUsage,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolDef,
    ToolResultPart,
)
from omnirelay.core.usage import Usage
from omnirelay.errors import InvalidRequest

JSON = dict[str, Any]

# max_tokens is required by Anthropic; a request from a format where it is optional gets this.
DEFAULT_MAX_TOKENS: Final = 4096
# Anthropic's smallest accepted thinking budget.
MIN_THINKING_BUDGET: Final = 1024
# reasoning effort -> thinking.budget_tokens (an unknown effort counts as "medium"). The largest budget
# plus the default answer room stays within 32000 tokens, the smallest output limit among Claude models
# that think, so a request without max_tokens is never refused for asking too much.
EFFORT_BUDGETS: Final[dict[str, int]] = {
    "minimal": 1024,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 27904,
    "max": 27904,
}
DEFAULT_EFFORT: Final = "medium"

# canonical finish reason -> Anthropic stop_reason ("error" has no Anthropic value).
STOP_REASONS: Final[dict[str, str]] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "stop_sequence": "stop_sequence",
    "content_filter": "refusal",
    "error": "end_turn",
}
# Anthropic stop_reason -> canonical finish reason (an unknown value counts as "stop").
FINISH_REASONS: Final[dict[str, FinishReason]] = {
    "end_turn": "stop",
    "max_tokens": "length",
    "stop_sequence": "stop_sequence",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    "pause_turn": "stop",
    "model_context_window_exceeded": "length",
}
# Anthropic's error types; a gateway error type outside this set is renamed by ERROR_TYPE_ALIASES.
ERROR_TYPES: Final = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "timeout_error",
        "overloaded_error",
    }
)
ERROR_TYPE_ALIASES: Final[dict[str, str]] = {
    "unauthorized": "authentication_error",
    "insufficient_quota": "billing_error",
    "service_unavailable": "overloaded_error",
    "upstream_timeout": "timeout_error",
}

_IMAGE_SIGNATURES: Final = (
    ("/9j/", "image/jpeg"),
    ("iVBORw0KGgo", "image/png"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)
_TOOL_ID_BAD = re.compile(r"[^a-zA-Z0-9_-]")
_DATA_URL = re.compile(r"^data:([^;,]+)?(?:;[^,]*)?;base64,(.*)$", re.S)


# -- small helpers ---------------------------------------------------------------------------------


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fail(param: str, message: str) -> NoReturn:
    raise InvalidRequest(message, param=param)


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


def _parse_arguments(arguments: str) -> JSON:
    """A tool call's JSON text as the object Anthropic's ``input`` needs ({} when it is not one)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def error_type(type_: str) -> str:
    """A gateway error type as one of Anthropic's (``api_error`` when there is no better one)."""
    if type_ in ERROR_TYPES:
        return type_
    return ERROR_TYPE_ALIASES.get(type_, "api_error")


def stop_reason(finish_reason: str, *, has_tool_calls: bool = False) -> str:
    """Canonical finish reason -> Anthropic ``stop_reason``.

    A turn that ends in tool calls is ``tool_use`` even when the upstream said "stop" (some
    OpenAI-compatible vendors do), since Anthropic clients run tools only on ``tool_use``.
    """
    if has_tool_calls and finish_reason == "stop":
        return "tool_use"
    return STOP_REASONS.get(finish_reason, "end_turn")


def finish_reason(stop: Any) -> FinishReason:
    return FINISH_REASONS.get(stop, "stop") if isinstance(stop, str) else "stop"


def usage_from_anthropic(usage: JSON) -> Usage:
    """Anthropic's usage block: ``input_tokens`` already EXCLUDES cache reads and writes, which come
    separately as ``cache_read_input_tokens`` and ``cache_creation_input_tokens``; ``output_tokens``
    includes thinking (``output_tokens_details.thinking_tokens`` is its breakdown)."""
    write = _count(usage.get("cache_creation_input_tokens"))
    breakdown = usage.get("cache_creation")
    if not write and isinstance(breakdown, dict):
        write = sum(_count(v) for v in breakdown.values())
    output = _count(usage.get("output_tokens"))
    details = usage.get("output_tokens_details")
    thinking = _count(details.get("thinking_tokens")) if isinstance(details, dict) else 0
    return Usage(
        input_uncached=_count(usage.get("input_tokens")),
        input_cache_read=_count(usage.get("cache_read_input_tokens")),
        input_cache_write=write,
        output=output,
        reasoning=min(thinking, output),
    )


def render_usage(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.input_uncached,
        "cache_creation_input_tokens": usage.input_cache_write,
        "cache_read_input_tokens": usage.input_cache_read,
        "output_tokens": usage.output,
    }


def passthrough_body(raw: bytes, body: JSON, upstream_model: str) -> bytes:
    """The body for an Anthropic upstream when the client speaks Anthropic too: the client's own bytes,
    unless the model name must change. (Anthropic streams always carry usage, so nothing else does.)"""
    if body.get("model") == upstream_model:
        return raw
    out = dict(body)
    out["model"] = upstream_model
    return orjson.dumps(out)


# -- inbound: parsing a client's request -----------------------------------------------------------


def _parse_image(block: JSON, param: str, dropped: list[str]) -> ImagePart | None:
    source = block.get("source")
    if not isinstance(source, dict):
        _fail(f"{param}.source", "image blocks need a 'source' object")
    kind = source.get("type")
    if kind == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if not isinstance(media_type, str) or not media_type:
            _fail(f"{param}.source.media_type", "base64 image sources need a 'media_type'")
        if not isinstance(data, str) or not data:
            _fail(f"{param}.source.data", "base64 image sources need 'data'")
        return ImagePart(media_type=media_type, data=data)
    if kind == "url":
        url = source.get("url")
        if not isinstance(url, str) or not url:
            _fail(f"{param}.source.url", "url image sources need a 'url'")
        return ImagePart(url=url)
    dropped.append(f"{param}.source: image source of type {kind!r}")
    return None


def _parse_text(block: JSON, param: str) -> TextPart:
    text = block.get("text")
    if not isinstance(text, str):
        _fail(f"{param}.text", "text blocks need a string 'text'")
    return TextPart(text)


def _parse_document(block: JSON, param: str, dropped: list[str]) -> TextPart | None:
    """A plain-text document is carried as its text; PDFs and other sources are not."""
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "text" and isinstance(source.get("data"), str):
        return TextPart(source["data"])
    kind = source.get("type") if isinstance(source, dict) else None
    dropped.append(f"{param}: document with a source of type {kind!r}")
    return None


def _parse_tool_result(block: JSON, param: str, dropped: list[str]) -> ToolResultPart:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        _fail(f"{param}.tool_use_id", "tool_result blocks need a 'tool_use_id'")
    is_error = block.get("is_error", False)
    if is_error is not None and not isinstance(is_error, bool):
        _fail(f"{param}.is_error", "'is_error' must be a boolean")
    content = block.get("content")
    parts: list[TextPart | ImagePart] = []
    if isinstance(content, str):
        parts.append(TextPart(content))
    elif isinstance(content, list):
        for k, item in enumerate(content):
            where = f"{param}.content[{k}]"
            if not isinstance(item, dict) or not isinstance(item.get("type"), str):
                _fail(where, "each tool_result content block must be an object with a 'type'")
            part: TextPart | ImagePart | None
            if item["type"] == "text":
                part = _parse_text(item, where)
            elif item["type"] == "image":
                part = _parse_image(item, where, dropped)
            elif item["type"] == "document":
                part = _parse_document(item, where, dropped)
            else:
                part = None
                dropped.append(f"{where}: tool_result content of type {item['type']!r}")
            if part is not None:
                parts.append(part)
    elif content is not None:
        _fail(f"{param}.content", "tool_result 'content' must be a string or an array of blocks")
    return ToolResultPart(tool_call_id=tool_use_id, content=parts, is_error=bool(is_error))


_ROLE_BLOCKS: Final = {"tool_use": "assistant", "thinking": "assistant", "redacted_thinking": "assistant"}


def _parse_block(block: Any, role: str, param: str, dropped: list[str]) -> Part | None:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        _fail(param, "each content block must be an object with a 'type'")
    kind = block["type"]
    if _ROLE_BLOCKS.get(kind, role) != role or (kind == "tool_result" and role != "user"):
        _fail(f"{param}.type", f"{kind} blocks are not allowed in {role} messages")
    if kind == "text":
        return _parse_text(block, param)
    if kind == "image":
        return _parse_image(block, param, dropped)
    if kind == "document":
        return _parse_document(block, param, dropped)
    if kind == "tool_use":
        call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
        if not isinstance(call_id, str) or not call_id:
            _fail(f"{param}.id", "tool_use blocks need an 'id'")
        if not isinstance(name, str) or not name:
            _fail(f"{param}.name", "tool_use blocks need a 'name'")
        if not isinstance(arguments, dict):
            _fail(f"{param}.input", "tool_use 'input' must be an object")
        return ToolCallPart(id=call_id, name=name, arguments=_dumps(arguments))
    if kind == "tool_result":
        return _parse_tool_result(block, param, dropped)
    if kind == "thinking":
        text, signature = block.get("thinking"), block.get("signature")
        if not isinstance(text, str):
            _fail(f"{param}.thinking", "thinking blocks need a string 'thinking'")
        if signature is not None and not isinstance(signature, str):
            _fail(f"{param}.signature", "'signature' must be a string")
        return ThinkingPart(text=text, signature=signature)
    if kind == "redacted_thinking":
        data = block.get("data")
        if not isinstance(data, str) or not data:
            _fail(f"{param}.data", "redacted_thinking blocks need 'data'")
        return ThinkingPart(redacted=data)
    # Server tool calls and results, search results, container uploads, later additions: valid for
    # Anthropic (a pass-through carries them), without a canonical form.
    dropped.append(f"{param}: content block of type {kind!r}")
    return None


def _parse_messages(messages: Any, dropped: list[str]) -> list[Message]:
    if messages is None:
        _fail("messages", "messages: Field required")
    if not isinstance(messages, list) or not messages:
        _fail("messages", "'messages' must be a non-empty array")
    out: list[Message] = []
    for i, message in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            _fail(param, "each message must be an object with a 'role' and 'content'")
        role = message.get("role")
        if role not in ("user", "assistant"):
            _fail(f"{param}.role", "'role' must be 'user' or 'assistant'")
        content = message.get("content")
        if isinstance(content, str):
            parts: list[Part] = [TextPart(content)]
        elif isinstance(content, list):
            parsed = (_parse_block(b, role, f"{param}.content[{j}]", dropped) for j, b in enumerate(content))
            parts = [p for p in parsed if p is not None]
        else:
            _fail(f"{param}.content", "'content' must be a string or an array of content blocks")
        out.append(Message(role=role, parts=parts))
    return out


def _parse_system(system: Any) -> list[TextPart]:
    if system is None:
        return []
    if isinstance(system, str):
        return [TextPart(system)] if system else []
    if isinstance(system, list):
        parts = []
        for i, block in enumerate(system):
            if not isinstance(block, dict) or block.get("type") != "text":
                _fail(f"system[{i}]", "system blocks must be text blocks")
            parts.append(_parse_text(block, f"system[{i}]"))
        return parts
    _fail("system", "'system' must be a string or an array of text blocks")


def _parse_tools(tools: Any, dropped: list[str]) -> list[ToolDef]:
    if tools is None:
        return []
    if not isinstance(tools, list):
        _fail("tools", "'tools' must be an array")
    out = []
    for i, tool in enumerate(tools):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            _fail(param, "each tool must be an object")
        kind = tool.get("type")
        if kind not in (None, "custom"):
            dropped.append(f"{param}: server tool of type {kind!r}")
            continue
        name, description, schema = tool.get("name"), tool.get("description"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            _fail(f"{param}.name", "tools need a 'name'")
        if description is not None and not isinstance(description, str):
            _fail(f"{param}.description", "'description' must be a string")
        if not isinstance(schema, dict):
            _fail(f"{param}.input_schema", "tools need an 'input_schema' object")
        out.append(ToolDef(name=name, description=description, parameters=schema))
    return out


_TOOL_CHOICE_MODES: Final[dict[str, Any]] = {
    "auto": "auto",
    "any": "required",
    "tool": "tool",
    "none": "none",
}


def _parse_tool_choice(choice: Any) -> tuple[ToolChoice | None, bool | None]:
    if choice is None:
        return None, None
    if not isinstance(choice, dict) or choice.get("type") not in _TOOL_CHOICE_MODES:
        _fail("tool_choice", "'tool_choice' must be an object with type 'auto', 'any', 'tool' or 'none'")
    kind = choice["type"]
    name = choice.get("name")
    if kind == "tool" and (not isinstance(name, str) or not name):
        _fail("tool_choice.name", "tool_choice of type 'tool' needs a 'name'")
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None and not isinstance(disable, bool):
        _fail("tool_choice.disable_parallel_tool_use", "'disable_parallel_tool_use' must be a boolean")
    parallel = None if disable is None else not disable
    return ToolChoice(mode=_TOOL_CHOICE_MODES[kind], name=name if kind == "tool" else None), parallel


def _parse_number(body: JSON, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if not _is_number(value) or not low <= value <= high:
        _fail(name, f"'{name}' must be a number from {low:g} to {high:g}")
    return float(value)


def _parse_thinking(request: ChatRequest, thinking: Any, dropped: list[str]) -> None:
    if thinking is None:
        return
    if not isinstance(thinking, dict) or not isinstance(thinking.get("type"), str):
        _fail("thinking", "'thinking' must be an object with a 'type'")
    kind = thinking["type"]
    if kind == "disabled":
        request.reasoning_enabled = False
    elif kind == "adaptive":
        request.reasoning_enabled = True
    elif kind == "enabled":
        assert isinstance(thinking, dict)
        budget: Any = thinking.get("budget_tokens")
        if not _is_int(budget) or budget < MIN_THINKING_BUDGET:
            _fail(
                "thinking.budget_tokens",
                f"'budget_tokens' must be an integer of at least {MIN_THINKING_BUDGET}",
            )
        request.reasoning_enabled, request.reasoning_budget = True, budget
    else:
        dropped.append(f"thinking: thinking of type {kind!r}")


def _parse_output_config(request: ChatRequest, config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, dict):
        _fail("output_config", "'output_config' must be an object")
    effort = config.get("effort")
    if effort is not None:
        if not isinstance(effort, str):
            _fail("output_config.effort", "'effort' must be a string")
        request.reasoning_effort = effort
    fmt = config.get("format")
    if fmt is not None:
        if (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(fmt.get("schema"), dict)
        ):
            _fail("output_config.format", "'format' must be {'type': 'json_schema', 'schema': {...}}")
        request.response_format = {
            "type": "json_schema",
            "name": "output",
            "schema": fmt["schema"],
            "strict": True,
        }


def parse_request(body: JSON, *, model: str, dropped: list[str] | None = None) -> ChatRequest:
    """A client's Messages body -> ChatRequest. Raises InvalidRequest (with ``param``) on what Anthropic
    itself would refuse.

    What is valid Anthropic but has no canonical form (PDF documents, server tools and their blocks,
    file sources, unknown block types) is left out, so that the engine can parse every call, pass-through
    included; each omission is described in ``dropped`` when a list is given (``translation_losses``).
    """
    if dropped is None:
        dropped = []
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        _fail("max_tokens", "max_tokens: Field required")
    if not _is_int(max_tokens) or max_tokens < 1:
        _fail("max_tokens", "'max_tokens' must be a positive integer")
    request = ChatRequest(
        model=model,
        messages=_parse_messages(body.get("messages"), dropped),
        system=_parse_system(body.get("system")),
        tools=_parse_tools(body.get("tools"), dropped),
        max_tokens=max_tokens,
    )
    request.tool_choice, request.parallel_tool_calls = _parse_tool_choice(body.get("tool_choice"))
    request.temperature = _parse_number(body, "temperature", 0, 1)
    request.top_p = _parse_number(body, "top_p", 0, 1)
    top_k = body.get("top_k")
    if top_k is not None and (not _is_int(top_k) or top_k < 0):
        _fail("top_k", "'top_k' must be a non-negative integer")
    request.top_k = top_k
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            _fail("stop_sequences", "'stop_sequences' must be an array of strings")
        request.stop = list(stops)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            _fail("metadata", "'metadata' must be an object")
        user_id = metadata.get("user_id")
        if user_id is not None and not isinstance(user_id, str):
            _fail("metadata.user_id", "'user_id' must be a string")
        request.user = user_id
    _parse_thinking(request, body.get("thinking"), dropped)
    _parse_output_config(request, body.get("output_config"))
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        _fail("stream", "'stream' must be a boolean")
    request.stream = bool(stream)
    return request


def translation_losses(body: JSON) -> list[str]:
    """What a translation of this (valid) Messages body to another format would leave out, one line per
    item (``messages[0].content[1]: document with a source of type 'base64'``); empty when nothing is
    lost. ``cache_control`` marks are not listed: they are dropped everywhere a translation happens."""
    dropped: list[str] = []
    parse_request(body, model=str(body.get("model") or ""), dropped=dropped)
    return dropped


# -- inbound: rendering an answer -------------------------------------------------------------------


def _render_block(part: Part) -> JSON | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None
    if isinstance(part, ThinkingPart):
        if part.redacted is not None:
            return {"type": "redacted_thinking", "data": part.redacted}
        return {"type": "thinking", "thinking": part.text, "signature": part.signature or ""}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": part.id,
            "name": part.name,
            "input": _parse_arguments(part.arguments),
        }
    return None  # images and tool results cannot be part of an Anthropic answer


def render_response(response: ChatResponse, *, model: str) -> JSON:
    content = [b for b in (_render_block(p) for p in response.parts) if b is not None]
    has_calls = any(isinstance(p, ToolCallPart) for p in response.parts)
    reason = stop_reason(response.finish_reason, has_tool_calls=has_calls)
    return {
        "id": response.id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": response.stop_sequence if reason == "stop_sequence" else None,
        "usage": render_usage(response.usage),
    }


def sse_event(kind: str, data: JSON) -> bytes:
    """One complete SSE event as Anthropic frames it: ``event: <type>``, ``data: <json>``, blank line."""
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def error_event(message: str, type_: str) -> bytes:
    return sse_event("error", {"type": "error", "error": {"type": error_type(type_), "message": message}})


class AnthropicStreamRenderer:
    """Canonical stream events -> Anthropic's SSE sequence.

    ``message_start`` is held back until the first content event so that usage reported at the start of
    a stream (an Anthropic or Gemini upstream) goes into it; when usage only comes at the end (OpenAI),
    ``message_start`` says 0 and ``message_delta`` carries the real figures. A content block opens when
    the kind of content changes, and each tool call gets a block of its own. ``StreamFinish`` closes the
    open block; ``message_delta`` (stop reason and final usage) and ``message_stop`` come from ``close()``.
    """

    def __init__(self, *, model: str, response_id: str) -> None:
        self._model = model
        self._id = response_id
        self._started = False
        self._finished = False
        self._ended = False  # message_stop or an error event was sent
        self._index = -1  # the last block opened
        self._open: str | None = None  # the open block's kind: text, thinking, tool
        self._open_tool: int | None = None
        self._tool_blocks: dict[int, int] = {}  # tool call index -> block index
        # Tool calls that started while another tool block was open: held (with their argument
        # fragments) until that block closes, because Anthropic blocks follow one another.
        self._queued: dict[int, tuple[str, str, list[str]]] = {}
        self._open_args: list[str] = []  # argument fragments sent to the open tool block
        self._finish: FinishReason | None = None
        self._stop_sequence: str | None = None
        self._usage: Usage | None = None

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        usage = self._usage or Usage()
        message: JSON = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**render_usage(usage), "output_tokens": min(usage.output, 1)},
        }
        return sse_event("message_start", {"type": "message_start", "message": message}) + sse_event(
            "ping", {"type": "ping"}
        )

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        self._open, self._open_tool = None, None
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": self._index})

    def _open_block(self, kind: str, block: JSON) -> bytes:
        out = self._close_block()
        self._index += 1
        self._open = kind
        return out + sse_event(
            "content_block_start",
            {"type": "content_block_start", "index": self._index, "content_block": block},
        )

    def _delta(self, delta: JSON, index: int | None = None) -> bytes:
        at = self._index if index is None else index
        return sse_event("content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta})

    def event(self, event: StreamEvent) -> bytes:
        if self._ended:
            return b""
        if isinstance(event, StreamStart):
            return b""  # the id is the gateway's (response_id), the model the client's
        if isinstance(event, StreamUsage):
            self._usage = event.usage
            return b""
        if isinstance(event, StreamError):
            return self.error(event.message, event.type)
        if self._finished:
            return b""
        out = self._start()
        if isinstance(event, TextDelta):
            if not event.text:
                return out
            out += self._flush_queued()
            if self._open != "text":
                out += self._open_block("text", {"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": event.text})
        if isinstance(event, ThinkingDelta):
            return out + self._flush_queued() + self._thinking(event)
        if isinstance(event, ToolCallStart):
            # The open tool block may still get fragments (upstreams that interleave calls) unless its
            # arguments are already a whole JSON object: only then can the next call stream live.
            if self._queued or (self._open == "tool" and not _is_json_object("".join(self._open_args))):
                self._queued[event.index] = (event.id, event.name, [])
                return out
            self._open_args = []
            out += self._open_block(
                "tool", {"type": "tool_use", "id": event.id, "name": event.name, "input": {}}
            )
            self._open_tool = event.index
            self._tool_blocks[event.index] = self._index
            return out
        if isinstance(event, ToolCallDelta):
            queued = self._queued.get(event.index)
            if queued is not None:
                queued[2].append(event.arguments)
                return out
            block = self._tool_blocks.get(event.index)
            if block is None or not event.arguments:
                return out
            if event.index == self._open_tool:
                self._open_args.append(event.arguments)
            # Tool calls arrive one after another; a late fragment of an earlier call (never seen from
            # real upstreams) still goes to that call's own block index.
            return out + self._delta({"type": "input_json_delta", "partial_json": event.arguments}, block)
        assert isinstance(event, StreamFinish)
        out += self._flush_queued()
        self._finished = True
        self._finish, self._stop_sequence = event.finish_reason, event.stop_sequence
        return out + self._close_block()

    def _flush_queued(self) -> bytes:
        """Emit the held tool calls, each as a whole block, in the order they started."""
        out = b""
        for index, (call_id, name, fragments) in list(self._queued.items()):
            out += self._open_block("tool", {"type": "tool_use", "id": call_id, "name": name, "input": {}})
            self._open_tool = index
            self._tool_blocks[index] = self._index
            arguments = "".join(fragments)
            if arguments:
                out += self._delta({"type": "input_json_delta", "partial_json": arguments})
        self._queued.clear()
        return out

    def _thinking(self, event: ThinkingDelta) -> bytes:
        out = b""
        if event.redacted is not None:
            out += self._open_block("redacted", {"type": "redacted_thinking", "data": event.redacted})
            return out + self._close_block()
        if event.separate and event.signature:
            # a signature that starts a block of its own (a Gemini signature on the next part): close
            # the open block, then a thinking block holding only the signature
            out += self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            out += self._delta({"type": "signature_delta", "signature": event.signature})
            return out + self._close_block()
        if event.text or event.signature:
            if self._open != "thinking":
                out += self._open_block("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            if event.text:
                out += self._delta({"type": "thinking_delta", "thinking": event.text})
            if event.signature:
                out += self._delta({"type": "signature_delta", "signature": event.signature})
        return out

    def close(self) -> bytes:
        if self._ended:
            return b""
        out = self._start() + self._flush_queued() + self._close_block()
        self._ended = True
        reason = stop_reason(self._finish or "stop", has_tool_calls=bool(self._tool_blocks))
        usage = render_usage(self._usage) if self._usage is not None else {"output_tokens": 0}
        delta = {
            "stop_reason": reason,
            "stop_sequence": self._stop_sequence if reason == "stop_sequence" else None,
        }
        out += sse_event("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + sse_event("message_stop", {"type": "message_stop"})

    def error(self, message: str, type: str) -> bytes:
        self._ended = True
        return error_event(message, type)


class AnthropicInbound:
    """A client speaking Anthropic Messages."""

    name = "anthropic"

    def parse(self, body: JSON, *, model: str) -> ChatRequest:
        return parse_request(body, model=model)

    def render(self, response: ChatResponse, *, model: str) -> JSON:
        return render_response(response, model=model)

    def stream_renderer(
        self, *, model: str, response_id: str, created: int, include_usage: bool
    ) -> AnthropicStreamRenderer:
        """``created`` has no place in Anthropic's events; usage is always sent (``include_usage`` is an
        OpenAI option)."""
        return AnthropicStreamRenderer(model=model, response_id=response_id)


# -- upstream: building a request body -------------------------------------------------------------


def tool_id(value: str) -> str:
    """Anthropic tool ids match ``^[a-zA-Z0-9_-]+$``; other characters become "_"."""
    return _TOOL_ID_BAD.sub("_", value) or "toolu_"


def _media_type(data: str) -> str:
    for prefix, media_type in _IMAGE_SIGNATURES:
        if data.startswith(prefix):
            return media_type
    return "image/png"


def _image_block(part: ImagePart) -> JSON | None:
    if part.data:
        source = {
            "type": "base64",
            "media_type": part.media_type or _media_type(part.data),
            "data": part.data,
        }
        return {"type": "image", "source": source}
    if part.url:
        match = _DATA_URL.match(part.url)
        if match:
            data = match.group(2)
            media_type = match.group(1) or _media_type(data)
            return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
        return {"type": "image", "source": {"type": "url", "url": part.url}}
    return None


def _content_blocks(parts: list[TextPart | ImagePart]) -> list[JSON]:
    out = []
    for part in parts:
        block = {"type": "text", "text": part.text} if isinstance(part, TextPart) else _image_block(part)
        if block is not None and block.get("text", True):
            out.append(block)
    return out


def _request_block(part: Part) -> JSON | None:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text} if part.text else None  # Anthropic refuses empty text
    if isinstance(part, ImagePart):
        return _image_block(part)
    if isinstance(part, ThinkingPart):
        if part.redacted is not None:
            return {"type": "redacted_thinking", "data": part.redacted}
        if not part.signature:
            return None  # unsigned reasoning (another vendor's) cannot be replayed to Anthropic
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    if isinstance(part, ToolCallPart):
        return {
            "type": "tool_use",
            "id": tool_id(part.id),
            "name": part.name,
            "input": _parse_arguments(part.arguments),
        }
    block: JSON = {"type": "tool_result", "tool_use_id": tool_id(part.tool_call_id)}
    content = _content_blocks(part.content)
    if content:
        block["content"] = content
    if part.is_error:
        block["is_error"] = True
    return block


def messages_to_anthropic(messages: list[Message]) -> list[JSON]:
    """Canonical messages -> Anthropic's: consecutive turns of one role merged into one message, empty
    ones dropped, and tool_result blocks first in each user message (Anthropic requires both)."""
    out: list[JSON] = []
    for message in messages:
        blocks = [b for b in (_request_block(p) for p in message.parts) if b is not None]
        if not blocks:
            continue
        if out and out[-1]["role"] == message.role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": message.role, "content": blocks})
    for turn in out:
        if turn["role"] == "user":
            turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    return out


def _schema_instruction(response_format: JSON | None) -> str | None:
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "json_object":
        return "Respond with one valid JSON object and nothing else: no prose, no code fences."
    if kind == "json_schema":
        assert isinstance(response_format, dict)
        schema = response_format.get("schema") or {"type": "object"}
        return (
            "Respond with one JSON value and nothing else (no prose, no code fences) that validates "
            f"against this JSON Schema: {_dumps(schema)}"
        )
    return None


def _input_schema(parameters: JSON) -> JSON:
    if not parameters:
        return {"type": "object", "properties": {}}
    return parameters if "type" in parameters else {"type": "object", **parameters}


def _thinking_budget(request: ChatRequest) -> int | None:
    """The thinking budget the request asks for, or None when thinking stays off."""
    if request.reasoning_enabled is False or request.reasoning_effort == "none":
        return None
    if request.reasoning_budget is not None:
        budget = request.reasoning_budget
    elif request.reasoning_effort is not None:
        budget = EFFORT_BUDGETS.get(request.reasoning_effort, EFFORT_BUDGETS[DEFAULT_EFFORT])
    elif request.reasoning_enabled:
        budget = EFFORT_BUDGETS[DEFAULT_EFFORT]
    else:
        return None
    return max(budget, MIN_THINKING_BUDGET)


def request_to_body(request: ChatRequest, *, upstream_model: str) -> JSON:
    body: JSON = {"model": upstream_model, "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS}
    system = [p.text for p in request.system if p.text]
    instruction = _schema_instruction(request.response_format)
    if instruction:
        system.append(instruction)
    if system:
        body["system"] = [{"type": "text", "text": text} for text in system]
    body["messages"] = messages_to_anthropic(request.messages)

    forced = False
    if request.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": _input_schema(t.parameters),
            }
            for t in request.tools
        ]
        choice: JSON | None = None
        if request.tool_choice is not None:
            mode = request.tool_choice.mode
            if mode == "tool" and request.tool_choice.name:
                choice = {"type": "tool", "name": request.tool_choice.name}
            elif mode == "required":
                choice = {"type": "any"}
            elif mode == "none":
                choice = {"type": "none"}
            else:
                choice = {"type": "auto"}
            forced = choice["type"] in ("any", "tool")
        if request.parallel_tool_calls is False and (choice is None or choice["type"] != "none"):
            choice = {**(choice or {"type": "auto"}), "disable_parallel_tool_use": True}
        if choice is not None:
            body["tool_choice"] = choice

    budget = _thinking_budget(request)
    thinking = budget is not None and not forced  # Anthropic refuses thinking with a forced tool
    if thinking:
        assert budget is not None
        max_tokens = body["max_tokens"]
        if budget >= max_tokens:
            if request.max_tokens is not None and max_tokens > MIN_THINKING_BUDGET:
                budget = max_tokens - 1  # the client's limit covers thinking, as OpenAI's does
            else:
                body["max_tokens"] = budget + max_tokens
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    elif request.reasoning_enabled is False or request.reasoning_effort == "none":
        body["thinking"] = {"type": "disabled"}

    # With thinking on Anthropic accepts no temperature or top_k, and top_p only from 0.95.
    if request.temperature is not None and not thinking:
        body["temperature"] = min(max(request.temperature, 0.0), 1.0)
    if request.top_p is not None and (not thinking or request.top_p >= 0.95):
        body["top_p"] = request.top_p
    if request.top_k is not None and not thinking:
        body["top_k"] = request.top_k
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.stream:
        body["stream"] = True
    return body


# -- upstream: reading an answer --------------------------------------------------------------------


def _response_part(block: Any) -> Part | None:
    if not isinstance(block, dict):
        return None
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return TextPart(block["text"])
    if kind == "thinking":
        signature = block.get("signature")
        return ThinkingPart(
            text=str(block.get("thinking") or ""), signature=signature if isinstance(signature, str) else None
        )
    if kind == "redacted_thinking" and isinstance(block.get("data"), str):
        return ThinkingPart(redacted=block["data"])
    if kind == "tool_use":
        arguments = block.get("input")
        return ToolCallPart(
            id=str(block.get("id") or ""),
            name=str(block.get("name") or ""),
            arguments=_dumps(arguments if isinstance(arguments, dict) else {}),
        )
    return None  # server tool blocks (web search...) have no canonical form


def response_from_body(data: JSON) -> ChatResponse:
    content = data.get("content")
    parts = (
        [p for p in (_response_part(b) for b in content) if p is not None]
        if isinstance(content, list)
        else []
    )
    usage = data.get("usage")
    stop_sequence = data.get("stop_sequence")
    return ChatResponse(
        id=str(data.get("id") or ""),
        model=str(data.get("model") or ""),
        parts=parts,
        finish_reason=finish_reason(data.get("stop_reason")),
        usage=usage_from_anthropic(usage) if isinstance(usage, dict) else Usage(),
        stop_sequence=stop_sequence if isinstance(stop_sequence, str) else None,
    )


def usage_from_body(data: JSON) -> Usage | None:
    usage = data.get("usage")
    return usage_from_anthropic(usage) if isinstance(usage, dict) else None


def _event_json(event: bytes) -> JSON | None:
    """The JSON payload of one SSE event (several ``data:`` lines are joined with newlines)."""
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    if not lines:
        return None
    try:
        data = orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


class AnthropicStreamParser:
    """Anthropic SSE events -> canonical events.

    ``ToolCallStart.index`` counts tool_use blocks only. Usage combines ``message_start`` (input and
    cache figures) with the cumulative counts of ``message_delta``; it is readable from ``usage`` as soon
    as ``message_start`` is seen, and sent once as ``StreamUsage`` at ``message_stop``. An ``error``
    event ends the stream (``done``), as Anthropic closes the stream after it.
    """

    def __init__(self) -> None:
        self._usage: JSON | None = None
        self._blocks: dict[int, str] = {}  # block index -> kind
        self._tools: dict[int, int] = {}  # block index -> tool call index
        self._tool_args: dict[int, bool] = {}  # tool call index -> saw a non-empty fragment
        self._finished = False
        self._done = False
        self.error: JSON | None = None

    @property
    def usage(self) -> Usage | None:
        return usage_from_anthropic(self._usage) if self._usage is not None else None

    @property
    def done(self) -> bool:
        return self._done

    def _merge_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        merged = dict(self._usage or {})
        merged.update({k: v for k, v in usage.items() if v is not None})
        self._usage = merged

    def feed(self, event: bytes) -> list[StreamEvent]:
        data = _event_json(event)
        if data is None:
            return []
        kind = data.get("type")
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_stop":
            index = data.get("index")
            tool = self._tools.get(index) if isinstance(index, int) else None
            if tool is not None and not self._tool_args.get(tool):
                self._tool_args[tool] = True
                return [ToolCallDelta(tool, "{}")]  # a call without arguments still gets valid JSON
            return []
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                return []
            self._merge_usage(message.get("usage"))
            return [StreamStart(id=str(message.get("id") or ""), model=str(message.get("model") or ""))]
        if kind == "message_delta":
            self._merge_usage(data.get("usage"))
            delta = data.get("delta")
            if self._finished or not isinstance(delta, dict) or delta.get("stop_reason") is None:
                return []
            self._finished = True
            sequence = delta.get("stop_sequence")
            return [
                StreamFinish(
                    finish_reason(delta.get("stop_reason")),
                    sequence if isinstance(sequence, str) else None,
                )
            ]
        if kind == "message_stop":
            self._done = True
            usage = self.usage
            return [StreamUsage(usage)] if usage is not None else []
        if kind == "error":
            self._done = True
            error = data.get("error")
            self.error = error if isinstance(error, dict) else {}
            return [
                StreamError(
                    message=str(self.error.get("message") or "upstream error"),
                    type=str(self.error.get("type") or "api_error"),
                )
            ]
        return []  # ping, and event types added later

    def _block_start(self, data: JSON) -> list[StreamEvent]:
        index, block = data.get("index"), data.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            return []
        kind = str(block.get("type"))
        self._blocks[index] = kind
        if kind == "text":
            text = block.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "thinking":
            out: list[StreamEvent] = []
            text, signature = block.get("thinking"), block.get("signature")
            if isinstance(text, str) and text:
                out.append(ThinkingDelta(text=text))
            if isinstance(signature, str) and signature:
                out.append(ThinkingDelta(signature=signature))
            return out
        if kind == "redacted_thinking":
            redacted = block.get("data")
            return [ThinkingDelta(redacted=redacted)] if isinstance(redacted, str) else []
        if kind == "tool_use":
            tool = len(self._tools)
            self._tools[index] = tool
            self._tool_args[tool] = False
            start: list[StreamEvent] = [
                ToolCallStart(tool, str(block.get("id") or ""), str(block.get("name") or ""))
            ]
            arguments = block.get("input")
            if isinstance(arguments, dict) and arguments:
                self._tool_args[tool] = True
                start.append(ToolCallDelta(tool, _dumps(arguments)))
            return start
        return []

    def _block_delta(self, data: JSON) -> list[StreamEvent]:
        index, delta = data.get("index"), data.get("delta")
        if not isinstance(delta, dict):
            return []
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "thinking_delta":
            text = delta.get("thinking")
            return [ThinkingDelta(text=text)] if isinstance(text, str) and text else []
        if kind == "signature_delta":
            signature = delta.get("signature")
            return [ThinkingDelta(signature=signature)] if isinstance(signature, str) and signature else []
        if kind == "input_json_delta":
            tool = self._tools.get(index) if isinstance(index, int) else None
            fragment = delta.get("partial_json")
            if tool is None or not isinstance(fragment, str) or not fragment:
                return []
            self._tool_args[tool] = True
            return [ToolCallDelta(tool, fragment)]
        return []  # citations_delta and later additions


class AnthropicUpstream:
    """An upstream speaking Anthropic Messages."""

    name = "anthropic"

    def to_body(self, request: ChatRequest, *, upstream_model: str) -> JSON:
        return request_to_body(request, upstream_model=upstream_model)

    def from_body(self, data: JSON) -> ChatResponse:
        return response_from_body(data)

    def stream_parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser()

    def usage_from_body(self, data: JSON) -> Usage | None:
        return usage_from_body(data)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False
