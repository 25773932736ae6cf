"""Provider-neutral chat types: what every dialect translates into and out of.

Used only when the client's format differs from the upstream's; a same-format call is a byte
pass-through and never builds these. The types are rich enough to carry what any of the four
formats can say without loss: thinking blocks with their signatures (and redacted thinking), several
tool calls per turn each with its own id, images with their media type (inline or by URL), tool
results that hold text and images, and per-block streaming.

Canonical values:
- roles: "user", "assistant" (a tool result is a ``ToolResultPart`` inside a "user" message,
  which is how Anthropic and Gemini model it; OpenAI's role "tool" maps to and from it);
- finish reasons: "stop", "length", "tool_calls", "content_filter", "stop_sequence", "error";
- usage: ``core.usage.Usage`` (uncached input, cache read, cache write, output incl. reasoning).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from omnirelay.core.usage import Usage

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "stop_sequence", "error"]


@dataclass(slots=True)
class TextPart:
    text: str
    kind: Literal["text"] = "text"


@dataclass(slots=True)
class ImagePart:
    """An image: inline base64 ``data`` with its ``media_type``, or a ``url``."""

    media_type: str | None = None
    data: str | None = None  # base64, no data: prefix
    url: str | None = None
    detail: str | None = None  # OpenAI's "low" / "high" / "auto", kept when it round-trips
    kind: Literal["image"] = "image"


@dataclass(slots=True)
class ThinkingPart:
    """Reasoning text with the upstream's signature (Anthropic), or a redacted block (``redacted``)."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None  # Anthropic redacted_thinking data
    kind: Literal["thinking"] = "thinking"


@dataclass(slots=True)
class ToolCallPart:
    id: str
    name: str
    arguments: str  # JSON text, exactly as produced
    kind: Literal["tool_call"] = "tool_call"


@dataclass(slots=True)
class ToolResultPart:
    tool_call_id: str
    content: list[TextPart | ImagePart]
    is_error: bool = False
    name: str | None = None  # Gemini's functionResponse needs the function name
    kind: Literal["tool_result"] = "tool_result"


Part = TextPart | ImagePart | ThinkingPart | ToolCallPart | ToolResultPart


@dataclass(slots=True)
class Message:
    role: Literal["user", "assistant"]
    parts: list[Part]


@dataclass(slots=True)
class ToolDef:
    name: str
    description: str | None
    parameters: dict[str, Any]  # JSON Schema


@dataclass(slots=True)
class ToolChoice:
    mode: Literal["auto", "none", "required", "tool"]
    name: str | None = None  # when mode == "tool"


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    system: list[TextPart] = field(default_factory=list)
    tools: list[ToolDef] = field(default_factory=list)
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    stream: bool = False
    # {"type": "json_object"} or {"type": "json_schema", "name", "schema", "strict"}
    response_format: dict[str, Any] | None = None
    # Reasoning: an effort ("low" | "medium" | "high") and/or a token budget; enabled=False turns it off.
    reasoning_effort: str | None = None
    reasoning_budget: int | None = None
    reasoning_enabled: bool | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    user: str | None = None
    n: int | None = None


@dataclass(slots=True)
class ChatResponse:
    id: str
    model: str
    parts: list[Part]  # the assistant's turn: text, thinking, tool calls, in order
    finish_reason: FinishReason
    usage: Usage
    stop_sequence: str | None = None
    created: int = 0


# --- streaming: canonical events, in the order an upstream produces them ---------------------------


@dataclass(slots=True)
class StreamStart:
    id: str
    model: str


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ThinkingDelta:
    text: str = ""
    signature: str | None = None  # sent once at the end of a thinking block (Anthropic)
    redacted: str | None = None
    # True: ``signature`` does not close the thinking block being streamed but starts a block of its
    # own, placed just before the next part (a Gemini ``thoughtSignature`` on a text or functionCall
    # part; the whole answer holds it as ``ThinkingPart("", signature)`` before that part).
    separate: bool = False


@dataclass(slots=True)
class ToolCallStart:
    index: int  # the call's position among this turn's tool calls, 0-based
    id: str
    name: str


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    arguments: str  # a fragment of the JSON text


@dataclass(slots=True)
class StreamFinish:
    finish_reason: FinishReason
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamUsage:
    usage: Usage


@dataclass(slots=True)
class StreamError:
    message: str
    type: str = "upstream_error"


StreamEvent = (
    StreamStart
    | TextDelta
    | ThinkingDelta
    | ToolCallStart
    | ToolCallDelta
    | StreamFinish
    | StreamUsage
    | StreamError
)
