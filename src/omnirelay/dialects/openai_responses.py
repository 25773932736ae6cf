"""The OpenAI Responses API as an inbound dialect: ``POST /v1/responses`` bodies -> the canonical
request, and canonical answers and streams -> Response objects and Responses stream events. Pure.

No upstream speaks Responses here, so every call through this dialect is translated. The gateway keeps
no state between calls, so ``previous_response_id`` and ``conversation`` are refused (the client sends
the whole input each time) and ``store`` is ignored.

Reasoning: a reasoning item becomes a ``ThinkingPart`` whose text is its summary and whose signature
is its ``encrypted_content``. A rendered reasoning item carries the upstream's signature (Anthropic's)
in ``encrypted_content``, so a client that sends its output back as input gives the upstream its own
signature again. A redacted thinking block travels as a reasoning item with no summary and
``encrypted_content = "omnirelay-redacted:" + data``. Genuine OpenAI ``encrypted_content`` means
nothing to another vendor; such items reach the upstream as signed thinking and may be refused there.

``render`` and ``stream_renderer`` take the parsed ``ChatRequest`` as an optional ``request``
argument: the Response object echoes the request's settings (instructions, tools, tool_choice,
temperature, top_p, parallel_tool_calls, text, reasoning), which the canonical answer does not hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from omnirelay.core.chat import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    Part,
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
from omnirelay.dialects.openai_chat_convert import (
    canonical_json_schema,
    image_from_url,
    invalid,
    json_text,
    metadata_of,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
    reasoning_effort,
    tool_def,
)

JSON = dict[str, Any]

REDACTED_PREFIX = "omnirelay-redacted:"
# Finish reasons that leave a Response "incomplete", and the reason it gives.
_INCOMPLETE: dict[FinishReason, str] = {"length": "max_output_tokens", "content_filter": "content_filter"}
# Request fields that need state this gateway does not keep.
_STATEFUL = {
    "previous_response_id": (
        "previous_response_id needs stored responses, which this gateway does not keep; send the full input"
    ),
    "conversation": "conversation needs stored conversations, which this gateway does not keep; "
    "send the full input",
    "prompt": "prompt templates are stored on OpenAI's side and cannot be used here; send the input itself",
}


# --- parse -----------------------------------------------------------------------------------------


def _content_parts(content: Any, param: str, *, text_only: bool = False) -> list[TextPart | ImagePart]:
    """Message or function-output content: a string, or a list of input/output content parts."""
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
        if kind in ("input_text", "output_text", "text"):
            if not isinstance(part.get("text"), str):
                raise invalid(f"'{where}.text' must be a string", f"{where}.text")
            out.append(TextPart(part["text"]))
        elif kind == "refusal":
            out.append(TextPart(str(part.get("refusal") or "")))
        elif kind == "input_image" and not text_only:
            if part.get("image_url") is None and part.get("file_id") is not None:
                raise invalid(
                    f"'{where}.file_id': uploaded files are not available through this gateway; "
                    "send the image as a URL or a base64 data URL in image_url",
                    f"{where}.file_id",
                )
            out.append(image_from_url(part.get("image_url"), part.get("detail"), f"{where}.image_url"))
        elif kind in ("input_file", "input_audio", "input_image"):
            raise invalid(
                f"'{where}': {kind} content cannot be translated for this model; send text and images",
                f"{where}.type",
            )
        else:
            raise invalid(f"'{where}.type' {kind!r} is not a supported content part type", f"{where}.type")
    return out


def _reasoning_part(item: JSON, param: str) -> ThinkingPart:
    encrypted = item.get("encrypted_content")
    if encrypted is not None and not isinstance(encrypted, str):
        raise invalid(f"'{param}.encrypted_content' must be a string", f"{param}.encrypted_content")
    if encrypted is not None and encrypted.startswith(REDACTED_PREFIX):
        return ThinkingPart(redacted=encrypted[len(REDACTED_PREFIX) :])
    texts: list[str] = []
    for key in ("summary", "content"):
        entries = item.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list):
            raise invalid(f"'{param}.{key}' must be an array", f"{param}.{key}")
        for k, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
                raise invalid(f"'{param}.{key}[{k}].text' must be a string", f"{param}.{key}[{k}].text")
            texts.append(entry["text"])
        if texts:  # the summary when there is one, else the raw reasoning text
            break
    return ThinkingPart(text="\n\n".join(texts), signature=encrypted or None)


class _Builder:
    """Input items -> canonical messages; the items of one assistant turn (reasoning, message,
    function calls) make one assistant message, and function outputs one user message."""

    def __init__(self) -> None:
        self.system: list[TextPart] = []
        self.messages: list[Message] = []
        self.call_names: dict[str, str] = {}
        self.after_outputs = False  # the last message holds function_call_output results

    def add(self, role: Literal["user", "assistant"], parts: list[Part], *, merge: bool) -> None:
        if merge and self.messages and self.messages[-1].role == role:
            self.messages[-1].parts.extend(parts)
        else:
            self.messages.append(Message(role, parts))

    def item(self, item: Any, param: str) -> None:
        if not isinstance(item, dict):
            raise invalid(f"'{param}' must be an object", param)
        kind = item.get("type", "message" if "role" in item else None)
        outputs = False
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                self.system.extend(
                    p
                    for p in _content_parts(content, f"{param}.content", text_only=True)
                    if isinstance(p, TextPart)
                )
                return
            if role == "user":
                parts: list[Part] = list(_content_parts(content, f"{param}.content"))
                self.add("user", parts, merge=self.after_outputs)
            elif role == "assistant":
                content_parts = _content_parts(content, f"{param}.content", text_only=True)
                texts: list[Part] = [p for p in content_parts if isinstance(p, TextPart) and p.text]
                self.add("assistant", texts, merge=True)
            else:
                raise invalid(
                    f"'{param}.role' {role!r} is not one of user, assistant, system, developer",
                    f"{param}.role",
                )
        elif kind == "function_call":
            call_id, name = item.get("call_id"), item.get("name")
            if not isinstance(call_id, str) or not call_id:
                raise invalid(f"'{param}.call_id' must be a non-empty string", f"{param}.call_id")
            if not isinstance(name, str) or not name:
                raise invalid(f"'{param}.name' must be a non-empty string", f"{param}.name")
            self.call_names[call_id] = name
            call = ToolCallPart(id=call_id, name=name, arguments=json_text(item.get("arguments")))
            self.add("assistant", [call], merge=True)
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid(f"'{param}.call_id' must be a non-empty string", f"{param}.call_id")
            output = item.get("output")
            result = ToolResultPart(
                tool_call_id=call_id,
                content=_content_parts(output if output is not None else "", f"{param}.output"),
                name=self.call_names.get(call_id),
            )
            self.add("user", [result], merge=self.after_outputs)
            outputs = True
        elif kind == "reasoning":
            self.add("assistant", [_reasoning_part(item, param)], merge=True)
        elif kind == "item_reference":
            raise invalid(
                f"'{param}': item references need stored items, which this gateway does not keep; "
                "send the items themselves",
                f"{param}.type",
            )
        else:
            raise invalid(
                f"'{param}.type' {kind!r} is not supported for this model: translation carries messages, "
                "function calls, function outputs and reasoning items",
                f"{param}.type",
            )
        self.after_outputs = outputs


def _parse_input(value: Any) -> tuple[list[TextPart], list[Message]]:
    if isinstance(value, str):
        return [], [Message("user", [TextPart(value)])]
    if not isinstance(value, list) or not value:
        raise invalid("'input' must be a string or a non-empty array of items", "input")
    builder = _Builder()
    for i, item in enumerate(value):
        builder.item(item, f"input[{i}]")
    # An assistant turn made only of empty messages says nothing.
    messages = [m for m in builder.messages if m.parts]
    return builder.system, messages


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
                f"'{param}.type' {tool.get('type')!r} is not supported through translation: only "
                "function tools reach this model",
                f"{param}.type",
            )
        tools.append(tool_def(tool.get("name"), tool.get("description"), tool.get("parameters"), param))
    return tools


def _parse_tool_choice(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("none", "auto", "required"):
        return ToolChoice(mode=value)
    if isinstance(value, dict) and value.get("type") == "function":
        name = value.get("name")
        if isinstance(name, str) and name:
            return ToolChoice(mode="tool", name=name)
    raise invalid(
        '\'tool_choice\' must be none, auto, required or {"type": "function", "name": ...} here',
        "tool_choice",
    )


def _parse_text_format(text: Any) -> JSON | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise invalid("'text' must be an object", "text")
    fmt = text.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict):
        raise invalid("'text.format' must be an object", "text.format")
    kind = fmt.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        return canonical_json_schema(fmt, "text.format")
    raise invalid("'text.format.type' must be text, json_object or json_schema", "text.format.type")


# --- render ----------------------------------------------------------------------------------------


def response_id_of(value: str) -> str:
    return value if value.startswith("resp_") else f"resp_{value}"


def _suffix(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def responses_usage(usage: Usage) -> JSON:
    """``input_tokens`` counts every input token once; ``cached_tokens`` is the cache-read share."""
    total_in = usage.input_total
    return {
        "input_tokens": total_in,
        "input_tokens_details": {
            "cached_tokens": usage.input_cache_read,
            "cache_write_tokens": usage.input_cache_write,
        },
        "output_tokens": usage.output,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning},
        "total_tokens": total_in + usage.output,
    }


def _reasoning_item(item_id: str, part: ThinkingPart) -> JSON:
    item: JSON = {"id": item_id, "type": "reasoning", "summary": []}
    if part.redacted is not None:
        item["encrypted_content"] = REDACTED_PREFIX + part.redacted
        return item
    if part.text:
        item["summary"] = [{"type": "summary_text", "text": part.text}]
    if part.signature:
        item["encrypted_content"] = part.signature
    return item


def _message_item(item_id: str, text: str, status: str) -> JSON:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSON:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _echo(request: ChatRequest | None) -> JSON:
    """The request settings a Response object repeats."""
    if request is None:
        request = ChatRequest(model="", messages=[])
    choice = request.tool_choice
    tool_choice: Any = "auto"
    if choice is not None:
        tool_choice = {"type": "function", "name": choice.name} if choice.mode == "tool" else choice.mode
    fmt: JSON = {"type": "text"}
    if request.response_format is not None:
        rf = request.response_format
        if rf.get("type") == "json_schema":
            fmt = {
                "type": "json_schema",
                "name": rf.get("name") or "response",
                "schema": rf.get("schema") or {},
                "strict": rf.get("strict"),
            }
        else:
            fmt = {"type": str(rf.get("type") or "text")}
    effort = "none" if request.reasoning_enabled is False else request.reasoning_effort
    return {
        "instructions": "\n\n".join(p.text for p in request.system) or None,
        "max_output_tokens": request.max_tokens,
        "metadata": request.metadata,
        "parallel_tool_calls": request.parallel_tool_calls is not False,
        "reasoning": {"effort": effort, "summary": None},
        "temperature": request.temperature if request.temperature is not None else 1.0,
        "text": {"format": fmt},
        "tool_choice": tool_choice,
        "tools": [
            {
                "type": "function",
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
                "strict": None,
            }
            for t in request.tools
        ],
        "top_p": request.top_p if request.top_p is not None else 1.0,
        "user": request.user,
    }


def _response_object(
    *,
    response_id: str,
    created_at: int,
    model: str,
    status: str,
    output: list[JSON],
    usage: Usage | None,
    request: ChatRequest | None,
    finish: FinishReason | None = None,
    error: JSON | None = None,
) -> JSON:
    reason = _INCOMPLETE.get(finish) if finish is not None and status == "incomplete" else None
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        "model": model,
        "output": output,
        "previous_response_id": None,
        "store": False,
        "truncation": "disabled",
        "usage": responses_usage(usage) if usage is not None else None,
        **_echo(request),
    }


def _status_of(finish: FinishReason | None) -> str:
    return "incomplete" if finish in _INCOMPLETE else "completed"


class ResponsesInbound:
    """A client speaking the OpenAI Responses API; every call is translated."""

    name = "openai_responses"

    def parse(self, body: dict[str, Any], *, model: str) -> ChatRequest:
        for key, message in _STATEFUL.items():
            if body.get(key) is not None:
                raise invalid(message, key)
        if body.get("background") is True:
            raise invalid(
                "background responses need stored responses, which this gateway does not keep", "background"
            )
        if "input" not in body:
            raise invalid("Missing required parameter: 'input'.", "input")
        system, messages = _parse_input(body.get("input"))
        instructions = opt_str(body, "instructions")
        if instructions:
            system.insert(0, TextPart(instructions))
        reasoning = body.get("reasoning")
        if reasoning is not None and not isinstance(reasoning, dict):
            raise invalid("'reasoning' must be an object", "reasoning")
        effort, enabled = reasoning_effort((reasoning or {}).get("effort"), "reasoning.effort")
        user = opt_str(body, "user")
        if user is None:
            user = opt_str(body, "safety_identifier")
        return ChatRequest(
            model=model,
            messages=messages,
            system=system,
            tools=_parse_tools(body.get("tools")),
            tool_choice=_parse_tool_choice(body.get("tool_choice")),
            parallel_tool_calls=opt_bool(body, "parallel_tool_calls"),
            max_tokens=opt_int(body, "max_output_tokens"),
            temperature=opt_number(body, "temperature"),
            top_p=opt_number(body, "top_p"),
            stream=opt_bool(body, "stream") is True,
            response_format=_parse_text_format(body.get("text")),
            reasoning_effort=effort,
            reasoning_enabled=enabled,
            metadata=metadata_of(body.get("metadata")),
            user=user,
        )

    def render(
        self, response: ChatResponse, *, model: str, request: ChatRequest | None = None
    ) -> dict[str, Any]:
        response_id = response_id_of(response.id)
        suffix = _suffix(response_id)
        status = _status_of(response.finish_reason)
        output: list[JSON] = []
        texts: list[str] = []

        def flush_text() -> None:
            if texts:
                output.append(_message_item(f"msg_{suffix}_{len(output)}", "".join(texts), status))
                texts.clear()

        for part in response.parts:
            if isinstance(part, TextPart):
                texts.append(part.text)
                continue
            if isinstance(part, ThinkingPart):
                flush_text()
                output.append(_reasoning_item(f"rs_{suffix}_{len(output)}", part))
            elif isinstance(part, ToolCallPart):
                flush_text()
                output.append(
                    _call_item(f"fc_{suffix}_{len(output)}", part.id, part.name, part.arguments, "completed")
                )
        flush_text()
        return _response_object(
            response_id=response_id,
            created_at=response.created,
            model=model,
            status=status,
            output=output,
            usage=response.usage,
            request=request,
            finish=response.finish_reason,
        )

    def stream_renderer(
        self,
        *,
        model: str,
        response_id: str,
        created: int,
        include_usage: bool,
        request: ChatRequest | None = None,
    ) -> ResponsesStreamRenderer:
        """``include_usage`` does not apply: the final event always carries the usage."""
        return ResponsesStreamRenderer(model=model, response_id=response_id, created=created, request=request)


# --- streaming -------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Item:
    kind: Literal["reasoning", "message", "function_call"]
    output_index: int
    id: str
    text: list[str] = field(default_factory=list)  # summary text, message text or arguments
    summary_open: bool = False
    signature: str | None = None
    redacted: str | None = None
    sealed: bool = False  # a reasoning item whose signature arrived: the next thinking starts a new one
    call_id: str = ""
    name: str = ""


class ResponsesStreamRenderer:
    """Canonical stream events -> Responses stream events (``event: <type>`` + ``data: {...}``).

    Order: ``response.created``, ``response.in_progress``, then per output item ``output_item.added``,
    its content events and ``output_item.done``; finally ``response.completed`` (or
    ``response.incomplete`` when the output was cut by the token limit or a content filter) with the
    whole Response, usage included. A reasoning item and a message item close when the other kind
    starts; function-call items stay open until the turn finishes, so argument fragments of any call
    always land on their own item (each call has its own ``output_index``).
    """

    def __init__(self, *, model: str, response_id: str, created: int, request: ChatRequest | None) -> None:
        self._model = model
        self._id = response_id_of(response_id)
        self._suffix = _suffix(self._id)
        self._created = created
        self._request = request
        self._seq = 0
        self._items: list[_Item] = []
        self._done_items: dict[int, JSON] = {}
        self._reasoning: _Item | None = None
        self._message: _Item | None = None
        self._calls: dict[int, _Item] = {}  # canonical tool-call index -> its open item
        self._started = False
        self._stopped = False
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    # -- framing --

    def _emit(self, kind: str, payload: JSON) -> bytes:
        data = {"type": kind, **payload, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _snapshot(self, status: str, *, final: bool, error: JSON | None = None) -> JSON:
        output = [self._done_items[i] for i in sorted(self._done_items)] if final else []
        return _response_object(
            response_id=self._id,
            created_at=self._created,
            model=self._model,
            status=status,
            output=output,
            usage=self._usage if final else None,
            request=self._request,
            finish=self._finish,
            error=error,
        )

    def _begin(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        snapshot = self._snapshot("in_progress", final=False)
        return self._emit("response.created", {"response": snapshot}) + self._emit(
            "response.in_progress", {"response": snapshot}
        )

    def _new_item(self, kind: Literal["reasoning", "message", "function_call"], prefix: str) -> _Item:
        index = len(self._items)
        item = _Item(kind=kind, output_index=index, id=f"{prefix}_{self._suffix}_{index}")
        self._items.append(item)
        return item

    # -- items --

    def _open_reasoning(self) -> bytes:
        item = self._reasoning = self._new_item("reasoning", "rs")
        added = {"id": item.id, "type": "reasoning", "summary": []}
        return self._emit("response.output_item.added", {"output_index": item.output_index, "item": added})

    def _close_reasoning(self) -> bytes:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return b""
        out = b""
        text = "".join(item.text)
        where = {"item_id": item.id, "output_index": item.output_index, "summary_index": 0}
        if item.summary_open:
            out += self._emit("response.reasoning_summary_text.done", {**where, "text": text})
            part = {"type": "summary_text", "text": text}
            out += self._emit("response.reasoning_summary_part.done", {**where, "part": part})
        done = _reasoning_item(
            item.id, ThinkingPart(text=text, signature=item.signature, redacted=item.redacted)
        )
        self._done_items[item.output_index] = done
        return out + self._emit(
            "response.output_item.done", {"output_index": item.output_index, "item": done}
        )

    def _thinking(self, event: ThinkingDelta) -> bytes:
        if not event.text and event.signature is None and event.redacted is None:
            return b""
        out = self._close_message()
        if event.redacted is not None:
            out += self._close_reasoning() + self._open_reasoning()
            assert self._reasoning is not None
            self._reasoning.redacted = event.redacted
            return out + self._close_reasoning()
        if event.text:
            if self._reasoning is None or self._reasoning.sealed:
                out += self._close_reasoning() + self._open_reasoning()
            item = self._reasoning
            assert item is not None
            where = {"item_id": item.id, "output_index": item.output_index, "summary_index": 0}
            if not item.summary_open:
                item.summary_open = True
                part = {"type": "summary_text", "text": ""}
                out += self._emit("response.reasoning_summary_part.added", {**where, "part": part})
            item.text.append(event.text)
            out += self._emit("response.reasoning_summary_text.delta", {**where, "delta": event.text})
        if event.signature is not None and event.separate:
            # a signature that starts an item of its own (a Gemini signature on the next part)
            out += self._close_reasoning() + self._open_reasoning()
            assert self._reasoning is not None
            self._reasoning.signature = event.signature
            return out + self._close_reasoning()
        if event.signature is not None:
            if self._reasoning is None or self._reasoning.sealed:
                out += self._close_reasoning() + self._open_reasoning()
            assert self._reasoning is not None
            self._reasoning.signature = event.signature
            self._reasoning.sealed = True
        return out

    def _open_message(self) -> bytes:
        item = self._message = self._new_item("message", "msg")
        added = {
            "id": item.id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": []}
        return self._emit(
            "response.output_item.added", {"output_index": item.output_index, "item": added}
        ) + self._emit("response.content_part.added", {**where, "part": part})

    def _close_message(self) -> bytes:
        item, self._message = self._message, None
        if item is None:
            return b""
        text = "".join(item.text)
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": 0}
        part = {"type": "output_text", "text": text, "annotations": []}
        done = _message_item(item.id, text, "incomplete" if self._finish in _INCOMPLETE else "completed")
        self._done_items[item.output_index] = done
        return (
            self._emit("response.output_text.done", {**where, "text": text, "logprobs": []})
            + self._emit("response.content_part.done", {**where, "part": part})
            + self._emit("response.output_item.done", {"output_index": item.output_index, "item": done})
        )

    def _text(self, event: TextDelta) -> bytes:
        if not event.text:
            return b""
        out = self._close_reasoning()
        if self._message is None:
            out += self._open_message()
        item = self._message
        assert item is not None
        item.text.append(event.text)
        where = {"item_id": item.id, "output_index": item.output_index, "content_index": 0}
        return out + self._emit("response.output_text.delta", {**where, "delta": event.text, "logprobs": []})

    def _open_call(self, index: int, call_id: str, name: str) -> bytes:
        item = self._new_item("function_call", "fc")
        item.call_id, item.name = call_id, name
        self._calls[index] = item
        added = _call_item(item.id, call_id, name, "", "in_progress")
        return self._emit("response.output_item.added", {"output_index": item.output_index, "item": added})

    def _close_calls(self) -> bytes:
        out = b""
        for item in sorted(self._calls.values(), key=lambda i: i.output_index):
            arguments = "".join(item.text)
            where = {"item_id": item.id, "output_index": item.output_index}
            out += self._emit("response.function_call_arguments.done", {**where, "arguments": arguments})
            done = _call_item(item.id, item.call_id, item.name, arguments, "completed")
            self._done_items[item.output_index] = done
            out += self._emit("response.output_item.done", {"output_index": item.output_index, "item": done})
        self._calls.clear()
        return out

    def _close_all(self) -> bytes:
        return self._close_reasoning() + self._close_message() + self._close_calls()

    # -- the StreamRenderer interface --

    def event(self, event: StreamEvent) -> bytes:
        if self._stopped:
            return b""
        if isinstance(event, StreamUsage):
            self._usage = event.usage
            return b""
        if isinstance(event, StreamStart):
            return self._begin()
        out = self._begin()
        if isinstance(event, TextDelta):
            return out + self._text(event)
        if isinstance(event, ThinkingDelta):
            return out + self._thinking(event)
        if isinstance(event, ToolCallStart):
            out += self._close_reasoning() + self._close_message()
            if event.index in self._calls:  # a second start for an index: keep the first call's item
                return out
            return out + self._open_call(event.index, event.id, event.name)
        if isinstance(event, ToolCallDelta):
            if not event.arguments:
                return out
            item = self._calls.get(event.index)
            if item is None:  # arguments before any start: give the call an item of its own
                out += self._open_call(event.index, f"call_{event.index}", "")
                item = self._calls[event.index]
            item.text.append(event.arguments)
            where = {"item_id": item.id, "output_index": item.output_index}
            return out + self._emit(
                "response.function_call_arguments.delta", {**where, "delta": event.arguments}
            )
        if isinstance(event, StreamFinish):
            if self._finish is None:
                self._finish = event.finish_reason
            return out + self._close_all()
        return out + self.error(event.message, event.type)

    def close(self) -> bytes:
        if self._stopped:
            return b""
        self._stopped = True
        out = self._begin() + self._close_all()
        status = _status_of(self._finish)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._emit(kind, {"response": self._snapshot(status, final=True)})

    def error(self, message: str, type: str) -> bytes:
        if self._stopped:
            return b""
        out = self._begin()
        self._stopped = True
        out += self._emit("error", {"code": type, "message": message, "param": None})
        code = "rate_limit_exceeded" if "rate_limit" in type else "server_error"
        failure = {"code": code, "message": message, "type": type}
        return out + self._emit(
            "response.failed", {"response": self._snapshot("failed", final=True, error=failure)}
        )


__all__ = [
    "REDACTED_PREFIX",
    "ResponsesInbound",
    "ResponsesStreamRenderer",
    "response_id_of",
    "responses_usage",
]
