"""OpenAI Chat Completions <-> the canonical chat types (``core.chat``), both directions, pure.

``OpenAIChatInbound`` reads a client's Chat Completions body and renders a canonical answer (whole or
streamed) back as Chat Completions; ``OpenAIChatUpstream`` writes a canonical request for an
OpenAI-compatible upstream and reads its answer and stream. A same-format call never comes here (the
engine passes bytes through, see ``dialects/openai_chat.py``). What each direction keeps, changes
and drops is listed in docs/dialects-openai.md; the main points:

- ``system`` and ``developer`` messages become the canonical system prompt, wherever they stood;
- ``role: "tool"`` messages become ``ToolResultPart``s of one user message (consecutive results, and
  a user message right after them, merge), named after the call they answer when it is known;
- reasoning is rendered the DeepSeek way (``reasoning_content``) and never sent back upstream;
- ``n > 1``, audio and ``logprobs`` cannot be translated and are refused with a clear message.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

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
from omnirelay.core.usage import Usage, from_openai_usage
from omnirelay.dialects.openai_chat import _event_data
from omnirelay.errors import InvalidRequest, UpstreamError

JSON = dict[str, Any]

# canonical finish reason -> OpenAI's. OpenAI has no separate stop-sequence or error reason.
FINISH_TO_OPENAI: dict[FinishReason, str] = {
    "stop": "stop",
    "stop_sequence": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "stop",
}
# OpenAI's (and OpenAI-compatible vendors') finish reasons -> canonical; anything else is "stop".
FINISH_FROM_OPENAI: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "insufficient_system_resource": "error",  # DeepSeek
    "model_context_window_exceeded": "length",
}
# Reasoning efforts beyond the canonical three, folded onto them (see ChatRequest.reasoning_effort).
_EFFORTS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
# OpenAI reasoning models refuse ``max_tokens``; they take ``max_completion_tokens``.
_COMPLETION_TOKENS_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Leading base64 characters of common image formats, for data URLs that name no media type.
_IMAGE_MAGIC = (
    ("iVBORw0KGgo", "image/png"),
    ("/9j/", "image/jpeg"),
    ("R0lGOD", "image/gif"),
    ("UklGR", "image/webp"),
)


# --- shared helpers (also used by the Responses dialect) --------------------------------------------


def invalid(message: str, param: str | None = None) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def opt_str(body: JSON, key: str, param: str | None = None) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise invalid(f"'{param or key}' must be a string", param or key)


def opt_bool(body: JSON, key: str, param: str | None = None) -> bool | None:
    value = body.get(key)
    if value is None or isinstance(value, bool):
        return value
    raise invalid(f"'{param or key}' must be a boolean", param or key)


def opt_int(body: JSON, key: str, param: str | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise invalid(f"'{param or key}' must be an integer", param or key)


def opt_number(body: JSON, key: str, param: str | None = None) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise invalid(f"'{param or key}' must be a number", param or key)


def opt_dict(body: JSON, key: str, param: str | None = None) -> JSON | None:
    value = body.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise invalid(f"'{param or key}' must be an object", param or key)


def opt_list(body: JSON, key: str, param: str | None = None) -> list[Any] | None:
    value = body.get(key)
    if value is None or isinstance(value, list):
        return value
    raise invalid(f"'{param or key}' must be an array", param or key)


def sniff_media_type(data: str) -> str | None:
    for prefix, media_type in _IMAGE_MAGIC:
        if data.startswith(prefix):
            return media_type
    return None


def image_from_url(url: Any, detail: Any, param: str) -> ImagePart:
    """An OpenAI image reference (an http(s) URL or a base64 ``data:`` URL) as an ``ImagePart``."""
    if not isinstance(url, str) or not url:
        raise invalid(f"'{param}' must be a non-empty string: an http(s) URL or a base64 data URL", param)
    if detail is not None and not isinstance(detail, str):
        raise invalid(f"'{param}' detail must be a string", param)
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        fields = [f.strip().lower() for f in header.split(";")]
        if not comma or "base64" not in fields[1:] or not data.strip():
            raise invalid(f"'{param}' must be a base64 data URL (data:<type>;base64,<data>)", param)
        data = data.strip()
        try:
            base64.b64decode(data[:64] + "=" * (-min(len(data), 64) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise invalid(f"'{param}' holds data that is not valid base64", param) from None
        media_type = fields[0] or sniff_media_type(data)
        return ImagePart(media_type=media_type, data=data, detail=detail)
    if url.startswith(("http://", "https://")):
        return ImagePart(url=url, detail=detail)
    raise invalid(f"'{param}' must be an http(s) URL or a base64 data URL", param)


def image_url_of(part: ImagePart) -> str:
    """The URL OpenAI formats take for an image: its own URL, or a ``data:`` URL of its bytes."""
    if part.url is not None:
        return part.url
    media_type = part.media_type or sniff_media_type(part.data or "") or "image/png"
    return f"data:{media_type};base64,{part.data or ''}"


def reasoning_effort(value: Any, param: str) -> tuple[str | None, bool | None]:
    """An OpenAI reasoning effort -> (canonical effort, reasoning_enabled)."""
    if value is None:
        return None, None
    if value == "none":
        return None, False
    if isinstance(value, str) and value in _EFFORTS:
        return _EFFORTS[value], None
    raise invalid(f"'{param}' must be one of none, minimal, low, medium, high, xhigh", param)


def json_text(value: Any) -> str:
    """Tool-call arguments as JSON text (some clients send an object instead of a string)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()


def openai_usage(usage: Usage) -> JSON:
    """Canonical usage as OpenAI's: ``prompt_tokens`` counts every input token once (uncached, cache
    reads and cache writes); ``cached_tokens`` is the cache-read share of it."""
    prompt = usage.input_total
    return {
        "prompt_tokens": prompt,
        "completion_tokens": usage.output,
        "total_tokens": prompt + usage.output,
        "prompt_tokens_details": {"cached_tokens": usage.input_cache_read},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning},
    }


def openai_finish(reason: FinishReason, has_tool_calls: bool) -> str:
    """Some upstreams (Gemini) end a tool-calling turn with a plain stop; OpenAI clients look for
    ``tool_calls``, so a turn that holds calls and stopped normally says so."""
    if has_tool_calls and reason in ("stop", "stop_sequence"):
        return "tool_calls"
    return FINISH_TO_OPENAI.get(reason, "stop")


def finish_from_openai(value: Any, has_tool_calls: bool) -> FinishReason:
    reason = FINISH_FROM_OPENAI.get(value, "stop") if isinstance(value, str) else "stop"
    if has_tool_calls and reason == "stop":
        return "tool_calls"
    return reason


def response_format_of(value: Any, param: str = "response_format") -> JSON | None:
    """Chat Completions ``response_format`` -> the canonical one."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(f"'{param}' must be an object", param)
    kind = value.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict):
            raise invalid(f"'{param}.json_schema' must be an object", f"{param}.json_schema")
        return canonical_json_schema(spec, f"{param}.json_schema")
    raise invalid(f"'{param}.type' must be text, json_object or json_schema", f"{param}.type")


def canonical_json_schema(spec: JSON, param: str) -> JSON:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise invalid(f"'{param}.name' must be a non-empty string", f"{param}.name")
    schema = spec.get("schema", {})
    if not isinstance(schema, dict):
        raise invalid(f"'{param}.schema' must be an object", f"{param}.schema")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise invalid(f"'{param}.strict' must be a boolean", f"{param}.strict")
    return {"type": "json_schema", "name": name, "schema": schema, "strict": strict}


def tool_def(name: Any, description: Any, parameters: Any, param: str) -> ToolDef:
    if not isinstance(name, str) or not name:
        raise invalid(f"'{param}.name' must be a non-empty string", f"{param}.name")
    if description is not None and not isinstance(description, str):
        raise invalid(f"'{param}.description' must be a string", f"{param}.description")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise invalid(f"'{param}.parameters' must be an object", f"{param}.parameters")
    return ToolDef(name=name, description=description, parameters=parameters)


def stop_list(value: Any, param: str = "stop") -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return list(value)
    raise invalid(f"'{param}' must be a string or an array of strings", param)


def metadata_of(value: Any, param: str = "metadata") -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid(f"'{param}' must be an object", param)
    return dict(value)


def sse_data(payload: Any) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


# --- inbound: a client speaking Chat Completions ---------------------------------------------------


def _text_parts(content: Any, param: str) -> list[TextPart]:
    """System/developer content: a string or a list of text parts."""
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list):
        raise invalid(f"'{param}' must be a string or an array of text parts", param)
    out: list[TextPart] = []
    for k, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise invalid(f"'{param}[{k}]' must be a text part", f"{param}[{k}]")
        out.append(TextPart(part["text"]))
    return out


def _user_parts(content: Any, param: str) -> list[TextPart | ImagePart]:
    if isinstance(content, str):
        return [TextPart(content)]
    if not isinstance(content, list):
        raise invalid(f"'{param}' must be a string or an array of content parts", param)
    out: list[TextPart | ImagePart] = []
    for k, part in enumerate(content):
        where = f"{param}[{k}]"
        if not isinstance(part, dict):
            raise invalid(f"'{where}' must be an object", where)
        kind = part.get("type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise invalid(f"'{where}.text' must be a string", f"{where}.text")
            out.append(TextPart(part["text"]))
        elif kind == "image_url":
            image = part.get("image_url")
            if isinstance(image, dict):
                out.append(image_from_url(image.get("url"), image.get("detail"), f"{where}.image_url.url"))
            else:  # a bare URL string, which several clients send
                out.append(image_from_url(image, None, f"{where}.image_url"))
        elif kind in ("input_audio", "file"):
            raise invalid(
                f"'{where}': {kind} content cannot be translated for this model (it is served through "
                "another API format); send text and images only",
                where,
            )
        else:
            raise invalid(f"'{where}.type' {kind!r} is not a supported content part type", f"{where}.type")
    return out


def _assistant_parts(message: JSON, param: str, call_names: dict[str, str]) -> list[Part]:
    parts: list[Part] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(ThinkingPart(text=reasoning))
    content = message.get("content")
    if isinstance(content, str):
        if content:
            parts.append(TextPart(content))
    elif isinstance(content, list):
        for k, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") not in ("text", "refusal"):
                raise invalid(f"'{param}.content[{k}]' must be a text part", f"{param}.content[{k}]")
            text = part.get("text") if part.get("type") == "text" else part.get("refusal")
            if not isinstance(text, str):
                raise invalid(f"'{param}.content[{k}]' has no text", f"{param}.content[{k}]")
            if text:
                parts.append(TextPart(text))
    elif content is not None:
        raise invalid(f"'{param}.content' must be a string, an array or null", f"{param}.content")
    calls = message.get("tool_calls")
    if calls is None:
        return parts
    if not isinstance(calls, list):
        raise invalid(f"'{param}.tool_calls' must be an array", f"{param}.tool_calls")
    for k, call in enumerate(calls):
        where = f"{param}.tool_calls[{k}]"
        if not isinstance(call, dict) or call.get("type", "function") != "function":
            raise invalid(f"'{where}' must be a function tool call", where)
        fn = call.get("function")
        call_id = call.get("id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid(f"'{where}.id' must be a non-empty string", f"{where}.id")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise invalid(f"'{where}.function.name' must be a non-empty string", f"{where}.function.name")
        call_names[call_id] = fn["name"]
        parts.append(ToolCallPart(id=call_id, name=fn["name"], arguments=json_text(fn.get("arguments"))))
    return parts


def _parse_messages(raw: Any) -> tuple[list[TextPart], list[Message]]:
    if not isinstance(raw, list) or not raw:
        raise invalid("'messages' must be a non-empty array", "messages")
    system: list[TextPart] = []
    messages: list[Message] = []
    call_names: dict[str, str] = {}
    after_tool = False  # the last canonical message holds role "tool" results
    for i, message in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(message, dict):
            raise invalid(f"'{param}' must be an object with a 'role'", param)
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), f"{param}.content"))
            continue
        if role == "user":
            parts: list[Part] = list(_user_parts(message.get("content"), f"{param}.content"))
            if after_tool:
                messages[-1].parts.extend(parts)
            else:
                messages.append(Message("user", parts))
            after_tool = False
        elif role == "assistant":
            parts = _assistant_parts(message, param, call_names)
            after_tool = False
            if parts:  # an assistant turn with neither content nor calls says nothing
                messages.append(Message("assistant", parts))
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid(f"'{param}.tool_call_id' must be a non-empty string", f"{param}.tool_call_id")
            content = _user_parts(message.get("content"), f"{param}.content")
            result = ToolResultPart(tool_call_id=call_id, content=content, name=call_names.get(call_id))
            if after_tool:
                messages[-1].parts.append(result)
            else:
                messages.append(Message("user", [result]))
            after_tool = True
        elif role == "function":
            raise invalid(
                f"'{param}': the legacy role 'function' cannot be translated; use tools and role 'tool'",
                f"{param}.role",
            )
        else:
            raise invalid(
                f"'{param}.role' {role!r} is not one of system, developer, user, assistant, tool",
                f"{param}.role",
            )
    return system, messages


def _parse_tools(raw: Any) -> list[ToolDef]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise invalid("'tools' must be an array", "tools")
    tools: list[ToolDef] = []
    for i, tool in enumerate(raw):
        param = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise invalid(f"'{param}' must be an object", param)
        if tool.get("type") != "function":
            raise invalid(
                f"'{param}.type' {tool.get('type')!r} is not supported for this model: it is served "
                "through translation, which carries function tools only",
                f"{param}.type",
            )
        fn = tool.get("function")
        if not isinstance(fn, dict):
            raise invalid(f"'{param}.function' must be an object", f"{param}.function")
        tools.append(
            tool_def(fn.get("name"), fn.get("description"), fn.get("parameters"), f"{param}.function")
        )
    return tools


def _parse_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return ToolChoice(mode=value)
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str) and fn["name"]:
            return ToolChoice(mode="tool", name=fn["name"])
    raise invalid(
        '\'tool_choice\' must be none, auto, required or {"type": "function", "function": {"name"}}',
        "tool_choice",
    )


def _parse_thinking(body: JSON, request: ChatRequest) -> None:
    """``thinking`` ({"type": "enabled", "budget_tokens": N} or {"type": "disabled"}), which clients of
    Claude models send through the OpenAI format as an extra field."""
    thinking = opt_dict(body, "thinking")
    if thinking is None:
        return
    kind = thinking.get("type")
    if kind == "disabled":
        request.reasoning_enabled = False
    elif kind == "enabled":
        request.reasoning_enabled = True
        budget = opt_int(thinking, "budget_tokens", "thinking.budget_tokens")
        if budget is not None:
            request.reasoning_budget = budget


class OpenAIChatInbound:
    """A client speaking OpenAI Chat Completions to a model served in another format."""

    name = "openai_chat"

    def parse(self, body: dict[str, Any], *, model: str) -> ChatRequest:
        system, messages = _parse_messages(body.get("messages"))
        n = opt_int(body, "n")
        if n is not None and n > 1:
            raise invalid(
                "'n' greater than 1 is not supported for this model: it is served through another API "
                "format, which returns one choice per request. Send n=1, or make n requests.",
                "n",
            )
        if body.get("logprobs") is True:
            raise invalid(
                "'logprobs' is not available for this model: it is served through another API format, "
                "which reports no token log probabilities.",
                "logprobs",
            )
        modalities = body.get("modalities")
        if body.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
            raise invalid("Audio output is not available for this model.", "modalities")
        if body.get("functions") is not None:
            raise invalid("The legacy 'functions' parameter cannot be translated; use 'tools'.", "functions")
        max_tokens = opt_int(body, "max_completion_tokens")
        if max_tokens is None:
            max_tokens = opt_int(body, "max_tokens")
        effort, enabled = reasoning_effort(body.get("reasoning_effort"), "reasoning_effort")
        request = ChatRequest(
            model=model,
            messages=messages,
            system=system,
            tools=_parse_tools(body.get("tools")),
            tool_choice=_parse_tool_choice(body.get("tool_choice")),
            parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
            max_tokens=max_tokens,
            temperature=opt_number(body, "temperature"),
            top_p=opt_number(body, "top_p"),
            top_k=opt_int(body, "top_k"),
            stop=stop_list(body.get("stop")),
            seed=opt_int(body, "seed"),
            stream=opt_bool(body, "stream") is True,
            response_format=response_format_of(body.get("response_format")),
            reasoning_effort=effort,
            reasoning_enabled=enabled,
            metadata=metadata_of(body.get("metadata")),
            user=opt_str(body, "user"),
            n=n,
        )
        _parse_thinking(body, request)
        return request

    def render(self, response: ChatResponse, *, model: str) -> dict[str, Any]:
        text = "".join(p.text for p in response.parts if isinstance(p, TextPart))
        thinking = "".join(p.text for p in response.parts if isinstance(p, ThinkingPart))
        calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
        message: JSON = {"role": "assistant", "content": text if text or not calls else None}
        if thinking:
            message["reasoning_content"] = thinking
        if calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in calls
            ]
        message["refusal"] = None
        return {
            "id": response.id,
            "object": "chat.completion",
            "created": response.created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": openai_finish(response.finish_reason, bool(calls)),
                }
            ],
            "usage": openai_usage(response.usage),
        }

    def stream_renderer(
        self, *, model: str, response_id: str, created: int, include_usage: bool
    ) -> OpenAIChatStreamRenderer:
        return OpenAIChatStreamRenderer(
            model=model, response_id=response_id, created=created, include_usage=include_usage
        )


class OpenAIChatStreamRenderer:
    """Canonical stream events -> ``chat.completion.chunk`` events, ``data: [DONE]`` at the close.

    Tool calls keep their own ``index`` (in the order they started); the first delta of a call carries
    its id, type and name, later ones only argument fragments. With ``include_usage`` every chunk has
    ``"usage": null`` and the usage chunk (``choices: []``) comes just before ``[DONE]``.
    """

    __slots__ = (
        "_closed",
        "_finished",
        "_head",
        "_include_usage",
        "_indices",
        "_started",
        "_stopped",
        "_usage",
    )

    def __init__(self, *, model: str, response_id: str, created: int, include_usage: bool) -> None:
        self._head: JSON = {
            "id": response_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._indices: dict[int, int] = {}  # canonical tool-call index -> index sent to the client
        self._started = False
        self._finished = False
        self._stopped = False  # error() or close() ran: nothing more but the end marker
        self._closed = False
        self._usage: Usage | None = None

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> bytes:
        data: JSON = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            data["usage"] = None
        return sse_data(data)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": ""})

    def _index(self, canonical: int) -> int:
        index = self._indices.get(canonical)
        if index is None:
            index = self._indices[canonical] = len(self._indices)
        return index

    def event(self, event: StreamEvent) -> bytes:
        if self._stopped:
            return b""
        if isinstance(event, TextDelta):
            return self._start() + (self._chunk({"content": event.text}) if event.text else b"")
        if isinstance(event, ThinkingDelta):
            if not event.text:  # signatures and redacted blocks have no place in this format
                return b""
            return self._start() + self._chunk({"reasoning_content": event.text})
        if isinstance(event, ToolCallStart):
            first = {
                "index": self._index(event.index),
                "id": event.id,
                "type": "function",
                "function": {"name": event.name, "arguments": ""},
            }
            return self._start() + self._chunk({"tool_calls": [first]})
        if isinstance(event, ToolCallDelta):
            if not event.arguments:
                return b""
            fragment = {"index": self._index(event.index), "function": {"arguments": event.arguments}}
            return self._start() + self._chunk({"tool_calls": [fragment]})
        if isinstance(event, StreamFinish):
            if self._finished:
                return b""
            self._finished = True
            reason = openai_finish(event.finish_reason, bool(self._indices))
            return self._start() + self._chunk({}, reason)
        if isinstance(event, StreamUsage):
            self._usage = event.usage
            return b""
        if isinstance(event, StreamStart):
            return self._start()
        return self.error(event.message, event.type)

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        if self._stopped:  # after an error: only the end marker
            return b"data: [DONE]\n\n"
        self._stopped = True
        out = b""
        if self._started and not self._finished:
            self._finished = True
            out += self._chunk({}, "tool_calls" if self._indices else "stop")
        if self._include_usage and self._usage is not None:
            out += sse_data({**self._head, "choices": [], "usage": openai_usage(self._usage)})
        return out + b"data: [DONE]\n\n"

    def error(self, message: str, type: str) -> bytes:
        self._stopped = True
        return sse_data({"error": {"message": message, "type": type, "param": None, "code": None}})


# --- upstream: an OpenAI-compatible server ---------------------------------------------------------


def _content_entry(part: TextPart | ImagePart) -> JSON:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    image: JSON = {"url": image_url_of(part)}
    if part.detail is not None:
        image["detail"] = part.detail
    return {"type": "image_url", "image_url": image}


def _user_content(parts: list[TextPart | ImagePart]) -> str | list[JSON]:
    """A lone text is sent as a plain string, which every OpenAI-compatible server accepts."""
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        return parts[0].text
    return [_content_entry(p) for p in parts]


def _user_messages(message: Message) -> list[JSON]:
    """One canonical user message -> role "tool" messages (its tool results, first, as OpenAI requires
    right after the calls) and a user message with the rest. Role "tool" content is text only, so
    images inside tool results move to that user message, after the results."""
    out: list[JSON] = []
    rest: list[TextPart | ImagePart] = []
    tool_images: list[TextPart | ImagePart] = []
    for part in message.parts:
        if isinstance(part, ToolResultPart):
            text = "".join(p.text for p in part.content if isinstance(p, TextPart))
            images = [p for p in part.content if isinstance(p, ImagePart)]
            if images:
                tool_images.extend(images)
                if not text:
                    text = f"(the result is {len(images)} image(s), sent in the next user message)"
            out.append({"role": "tool", "tool_call_id": part.tool_call_id, "content": text})
        elif isinstance(part, TextPart | ImagePart):
            rest.append(part)
        # thinking and tool calls have no place in a user turn
    rest = tool_images + rest
    if rest:
        out.append({"role": "user", "content": _user_content(rest)})
    return out


def _assistant_message(message: Message) -> JSON | None:
    """Thinking is dropped: OpenAI takes none back, and DeepSeek rejects ``reasoning_content`` in input."""
    text = "".join(p.text for p in message.parts if isinstance(p, TextPart))
    calls = [p for p in message.parts if isinstance(p, ToolCallPart)]
    if not text and not calls:
        return None
    out: JSON = {"role": "assistant", "content": text if text or not calls else None}
    if calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments or "{}"},
            }
            for c in calls
        ]
    return out


def _tool_choice_body(choice: ToolChoice) -> str | JSON:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name or ""}}
    return choice.mode


def _response_format_body(fmt: JSON) -> JSON:
    if fmt.get("type") == "json_schema":
        spec: JSON = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            spec["strict"] = fmt["strict"]
        return {"type": "json_schema", "json_schema": spec}
    return {"type": str(fmt.get("type") or "text")}


class OpenAIChatUpstream:
    """Canonical requests for an OpenAI-compatible upstream, and its answers back."""

    name = "openai_chat"

    def to_body(self, request: ChatRequest, *, upstream_model: str) -> dict[str, Any]:
        messages: list[JSON] = [{"role": "system", "content": p.text} for p in request.system]
        for message in request.messages:
            if message.role == "user":
                messages.extend(_user_messages(message))
            elif (assistant := _assistant_message(message)) is not None:
                messages.append(assistant)
        body: JSON = {"model": upstream_model, "messages": messages}
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        **({"description": t.description} if t.description is not None else {}),
                        "parameters": t.parameters,
                    },
                }
                for t in request.tools
            ]
            if request.parallel_tool_calls is not None:
                body["parallel_tool_calls"] = request.parallel_tool_calls
        if request.tool_choice is not None:
            body["tool_choice"] = _tool_choice_body(request.tool_choice)
        if request.max_tokens is not None:
            key = (
                "max_completion_tokens"
                if upstream_model.startswith(_COMPLETION_TOKENS_PREFIXES)
                else "max_tokens"
            )
            body[key] = request.max_tokens
        optional = {"temperature": request.temperature, "top_p": request.top_p, "seed": request.seed}
        body.update({k: v for k, v in optional.items() if v is not None})
        if request.stop:
            body["stop"] = list(request.stop)
        if request.response_format is not None:
            body["response_format"] = _response_format_body(request.response_format)
        if request.reasoning_effort is not None and request.reasoning_enabled is not False:
            body["reasoning_effort"] = request.reasoning_effort
        if request.user is not None:
            body["user"] = request.user
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        return body

    def from_body(self, data: dict[str, Any]) -> ChatResponse:
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            raise UpstreamError("The upstream answered without a choice.")
        message = choice.get("message")
        message = message if isinstance(message, dict) else {}
        parts: list[Part] = []
        for field in ("reasoning_content", "reasoning"):
            reasoning = message.get(field)
            if isinstance(reasoning, str) and reasoning:
                parts.append(ThinkingPart(text=reasoning))
                break
        content = message.get("content")
        if isinstance(content, str) and content:
            parts.append(TextPart(content))
        elif isinstance(content, list):
            for item in content:
                if isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"]:
                    parts.append(TextPart(item["text"]))
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal and not any(isinstance(p, TextPart) for p in parts):
            parts.append(TextPart(refusal))
        for k, call in enumerate(message.get("tool_calls") or []):
            fn = call.get("function") if isinstance(call, dict) else None
            if not isinstance(fn, dict):
                continue
            call_id = call.get("id")
            parts.append(
                ToolCallPart(
                    id=call_id if isinstance(call_id, str) and call_id else f"call_{k}",
                    name=str(fn.get("name") or ""),
                    arguments=json_text(fn.get("arguments")),
                )
            )
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        created = data.get("created")
        return ChatResponse(
            id=str(data.get("id") or ""),
            model=str(data.get("model") or ""),
            parts=parts,
            finish_reason=finish_from_openai(choice.get("finish_reason"), has_calls),
            usage=self.usage_from_body(data) or Usage(),
            created=created if isinstance(created, int) and not isinstance(created, bool) else 0,
        )

    def stream_parser(self) -> OpenAIChatStreamParser:
        return OpenAIChatStreamParser()

    def usage_from_body(self, data: dict[str, Any]) -> Usage | None:
        usage = data.get("usage")
        return from_openai_usage(usage) if isinstance(usage, dict) else None


class OpenAIChatStreamParser:
    """``chat.completion.chunk`` events -> canonical events.

    Tool calls are told apart by their ``index`` and, for vendors that reuse index 0, by a new ``id``;
    each gets the next canonical index. Only choice 0 is read (translation never asks for more).
    """

    __slots__ = ("_calls", "_count", "_done", "_finished", "_started", "_usage")

    def __init__(self) -> None:
        self._calls: dict[int, tuple[int, str]] = {}  # upstream index -> (canonical index, call id)
        self._count = 0  # tool calls started so far
        self._started = False
        self._finished = False
        self._done = False
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: bytes) -> list[StreamEvent]:
        data = _event_data(event)
        if data is None:
            return []
        if data.strip() == b"[DONE]":
            self._done = True
            return []
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return []
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if isinstance(error, dict):
            return [
                StreamError(
                    message=str(error.get("message") or "The upstream reported an error."),
                    type=str(error.get("type") or "upstream_error"),
                )
            ]
        out: list[StreamEvent] = []
        choices = chunk.get("choices")
        if not self._started and (chunk.get("id") or choices):
            self._started = True
            out.append(StreamStart(id=str(chunk.get("id") or ""), model=str(chunk.get("model") or "")))
        if isinstance(choices, list):
            for choice in choices:
                if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                    continue
                delta = choice.get("delta")
                if isinstance(delta, dict):
                    self._delta(delta, out)
                finish = choice.get("finish_reason")
                if isinstance(finish, str) and finish and not self._finished:
                    self._finished = True
                    out.append(StreamFinish(finish_from_openai(finish, self._count > 0)))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self._usage = from_openai_usage(usage)
            out.append(StreamUsage(self._usage))
        return out

    def _delta(self, delta: JSON, out: list[StreamEvent]) -> None:
        for field in ("reasoning_content", "reasoning"):
            reasoning = delta.get(field)
            if isinstance(reasoning, str) and reasoning:
                out.append(ThinkingDelta(text=reasoning))
                break
        content = delta.get("content")
        if isinstance(content, str) and content:
            out.append(TextDelta(content))
        calls = delta.get("tool_calls")
        if not isinstance(calls, list):
            return
        for position, call in enumerate(calls):
            if not isinstance(call, dict):
                continue
            index = call.get("index")
            upstream_index = index if isinstance(index, int) else position
            call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
            fn = call.get("function")
            fn = fn if isinstance(fn, dict) else {}
            current = self._calls.get(upstream_index)
            if current is None or (call_id is not None and call_id != current[1]):
                canonical = self._count
                self._count += 1
                current = (canonical, call_id or f"call_{canonical}")
                self._calls[upstream_index] = current
                out.append(ToolCallStart(canonical, current[1], str(fn.get("name") or "")))
            arguments = json_text(fn.get("arguments"))
            if arguments:
                out.append(ToolCallDelta(current[0], arguments))


__all__ = [
    "FINISH_FROM_OPENAI",
    "FINISH_TO_OPENAI",
    "OpenAIChatInbound",
    "OpenAIChatStreamParser",
    "OpenAIChatStreamRenderer",
    "OpenAIChatUpstream",
    "openai_usage",
]
