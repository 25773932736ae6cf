"""Gemini ``generateContent`` (v1beta) on the wire, both faces, pure (see dialects/base.py).

The model is not in a Gemini body: it is in the URL (``/v1beta/models/{model}:generateContent``,
``:streamGenerateContent?alt=sse`` for a stream), so ``GeminiInbound.parse`` takes it as an argument,
always returns ``stream=False`` (the caller sets ``stream`` from the URL), and ``GeminiUpstream.to_body``
leaves it out. Keys are read in camelCase (what the REST API and the google-genai SDK send) or
snake_case (what the API also accepts, and some clients send); everything written is camelCase.

Choices worth knowing (docs/providers/gemini.md has the full tables):

- Function call ids. Gemini may omit them. A call without an id gets ``call_<index>``, its 0-based
  position among the function calls of the request (``parse``) or of the response (``from_body``,
  stream parser), so the same body always yields the same ids. A ``functionResponse`` without an id
  answers the first still-unanswered call of the same name in the turns before it (name order, as
  Gemini itself matches them); one that answers no call is an ``InvalidRequest``.
- Thought signatures. A signature on a thought part stays on that ``ThinkingPart``; a signature on
  any other part (text, functionCall) becomes ``ThinkingPart(text="", signature=...)`` immediately
  before the part it belongs to, and is put back on that part when rendered or sent, so a Gemini
  signature returns on the part it came from. Consecutive thought parts without a signature merge
  into one ThinkingPart (streamed thoughts come in pieces); a signature closes the block.
- Model turns of history that hold function calls but no signature at all (history written by
  another model or by hand) get Google's documented placeholder signature on their first call when
  sent upstream, since Gemini 3 rejects an unsigned function call.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Final

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

# Gemini finishReason -> canonical. Gemini has no "tool calls" reason: a turn that calls functions
# ends STOP, so STOP with function calls in the turn is read as "tool_calls".
FINISH_FROM_GEMINI: Final[dict[str, FinishReason]] = {
    "FINISH_REASON_UNSPECIFIED": "stop",
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
    "OTHER": "error",
    "IMAGE_OTHER": "error",
    "NO_IMAGE": "error",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
    "TOO_MANY_TOOL_CALLS": "error",
    "MISSING_THOUGHT_SIGNATURE": "error",
}
# Canonical -> Gemini finishReason.
FINISH_TO_GEMINI: Final[dict[str, str]] = {
    "stop": "STOP",
    "stop_sequence": "STOP",
    "tool_calls": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
    "error": "OTHER",
}
# HTTP status -> Google's canonical error status name (error bodies rendered to Gemini clients).
HTTP_STATUS_NAMES: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "RESOURCE_EXHAUSTED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# Google's status name -> HTTP code (a Gemini upstream's mid-stream error keeps its status as type).
STATUS_CODES: Final[dict[str, int]] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "ALREADY_EXISTS": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# A gateway error ``type`` (errors.py, StreamError.type) -> the HTTP code of a mid-stream error event.
ERROR_TYPE_CODES: Final[dict[str, int]] = {
    "invalid_request_error": 400,
    "unauthorized": 401,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "insufficient_quota": 429,
    "rate_limit_error": 429,
    "upstream_error": 502,
    "overloaded_error": 503,
    "service_unavailable": 503,
    "upstream_timeout": 504,
    "timeout": 504,
}
# functionCallingConfig.mode -> canonical tool choice mode.
TOOL_MODES_IN: Final[dict[str, str]] = {
    "AUTO": "auto",
    "MODE_UNSPECIFIED": "auto",
    "VALIDATED": "auto",
    "ANY": "required",
    "NONE": "none",
}
# reasoning_effort -> thinkingBudget sent upstream (Gemini 2.5 takes a budget; Gemini 3 still does).
EFFORT_BUDGETS: Final[dict[str, int]] = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
# thinkingLevel (Gemini 3) -> reasoning_effort.
THINKING_LEVELS: Final[dict[str, str]] = {"minimal": "low", "low": "low", "medium": "medium", "high": "high"}
# Google's documented signature for function calls the model did not produce itself.
PLACEHOLDER_SIGNATURE: Final = "skip_thought_signature_validator"
SUPPORTED_METHODS: Final = ["generateContent", "streamGenerateContent", "countTokens"]
# Gemini's OpenAPI Schema type names -> JSON Schema type names.
_SCHEMA_TYPES: Final[dict[str, str]] = {
    "STRING": "string",
    "NUMBER": "number",
    "INTEGER": "integer",
    "BOOLEAN": "boolean",
    "ARRAY": "array",
    "OBJECT": "object",
    "NULL": "null",
}
# Gemini Schema fields spelled in snake_case by some clients.
_SCHEMA_KEYS: Final[dict[str, str]] = {
    "any_of": "anyOf",
    "max_items": "maxItems",
    "min_items": "minItems",
    "max_length": "maxLength",
    "min_length": "minLength",
    "max_properties": "maxProperties",
    "min_properties": "minProperties",
    "property_ordering": "propertyOrdering",
}
_DROPPED_SCHEMA_KEYS: Final = frozenset({"propertyOrdering", "nullable"})


# ---- small readers ------------------------------------------------------------------------------


@functools.cache
def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _get(obj: JSON, name: str) -> Any:
    """``obj[name]`` for a camelCase name, or its snake_case spelling."""
    if name in obj:
        return obj[name]
    return obj.get(_snake(name))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _object_or_none(text: str) -> JSON | None:
    try:
        value = orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _invalid(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _opt_number(obj: JSON, name: str, path: str) -> float | None:
    value = _get(obj, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _invalid(f"'{name}' must be a number", f"{path}.{name}")
    return float(value)


def _opt_int(obj: JSON, name: str, path: str, *, minimum: int | None = None) -> int | None:
    value = _get(obj, name)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(f"'{name}' must be an integer", f"{path}.{name}")
    if minimum is not None and value < minimum:
        raise _invalid(f"'{name}' must be at least {minimum}", f"{path}.{name}")
    return value


def openapi_to_json_schema(schema: Any) -> Any:
    """Gemini's OpenAPI-subset ``Schema`` (``parameters``, ``responseSchema``) as JSON Schema:
    upper-case type names lowered, ``nullable`` folded into the type, ``propertyOrdering`` dropped."""
    if isinstance(schema, list):
        return [openapi_to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: JSON = {}
    for raw_key, value in schema.items():
        key = _SCHEMA_KEYS.get(str(raw_key), str(raw_key))
        if key in _DROPPED_SCHEMA_KEYS:
            continue
        if key == "type" and isinstance(value, str):
            if value.upper() in ("TYPE_UNSPECIFIED", ""):
                continue
            out["type"] = _SCHEMA_TYPES.get(value.upper(), value.lower())
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: openapi_to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf", "not", "additionalProperties"):
            out[key] = openapi_to_json_schema(value)
        else:
            out[key] = value
    if schema.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif "anyOf" in out and isinstance(out["anyOf"], list):
            out["anyOf"] = [*out["anyOf"], {"type": "null"}]
    return out


# ---- usage --------------------------------------------------------------------------------------


def usage_from_gemini(meta: JSON) -> Usage:
    """Gemini ``usageMetadata`` -> Usage.

    ``promptTokenCount`` includes ``cachedContentTokenCount``; ``candidatesTokenCount`` excludes
    ``thoughtsTokenCount`` (Gemini bills thoughts as output); ``toolUsePromptTokenCount`` (results of
    Google-run tools fed back to the model) is billed as input and is added to the uncached input.
    """
    prompt = _count(_get(meta, "promptTokenCount"))
    cached = min(_count(_get(meta, "cachedContentTokenCount")), prompt)
    tool_use = _count(_get(meta, "toolUsePromptTokenCount"))
    candidates = _count(_get(meta, "candidatesTokenCount"))
    thoughts = _count(_get(meta, "thoughtsTokenCount"))
    return Usage(
        input_uncached=prompt - cached + tool_use,
        input_cache_read=cached,
        output=candidates + thoughts,
        reasoning=thoughts,
    )


def usage_to_gemini(usage: Usage) -> JSON:
    """Usage -> ``usageMetadata`` (the prompt count includes cache reads and writes)."""
    prompt = usage.input_total
    thoughts = min(usage.reasoning, usage.output)
    meta: JSON = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": usage.output - thoughts,
        "totalTokenCount": prompt + usage.output,
    }
    if usage.input_cache_read:
        meta["cachedContentTokenCount"] = usage.input_cache_read
    if thoughts:
        meta["thoughtsTokenCount"] = thoughts
    return meta


def finish_from_gemini(reason: str | None, has_calls: bool) -> FinishReason:
    mapped = FINISH_FROM_GEMINI.get(reason or "STOP", "stop")
    return "tool_calls" if mapped == "stop" and has_calls else mapped


# ---- errors -------------------------------------------------------------------------------------


def status_name(code: int) -> str:
    """Google's status name for an HTTP code (``INTERNAL`` for an unlisted 5xx)."""
    return HTTP_STATUS_NAMES.get(code, "INTERNAL" if code >= 500 else "INVALID_ARGUMENT")


def error_body(code: int, message: str, status: str | None = None) -> JSON:
    """Google's error object ``{"error": {"code", "message", "status"}}``, for Gemini routes."""
    return {"error": {"code": code, "message": message, "status": status or status_name(code)}}


# ---- Gemini parts -> canonical parts ------------------------------------------------------------


@dataclass(slots=True)
class _CallBook:
    """Function call ids across a conversation: synthesized ids and name-order matching."""

    count: int = 0
    pending: list[tuple[str, str]] = field(default_factory=list)  # (id, name) not yet answered

    def new_call(self, call_id: Any, name: str) -> str:
        index, self.count = self.count, self.count + 1
        resolved = call_id if isinstance(call_id, str) and call_id else f"call_{index}"
        self.pending.append((resolved, name))
        return resolved

    def answer(self, call_id: Any, name: str) -> str | None:
        if isinstance(call_id, str) and call_id:
            self.pending = [p for p in self.pending if p[0] != call_id]
            return call_id
        for k, (pending_id, pending_name) in enumerate(self.pending):
            if pending_name == name:
                del self.pending[k]
                return pending_id
        return None


def _is_image(mime: Any) -> bool:
    return isinstance(mime, str) and mime.lower().startswith("image/")


def _blob_part(part: JSON, path: str, strict: bool) -> ImagePart | None:
    inline = _get(part, "inlineData")
    if isinstance(inline, dict):
        mime, data = _get(inline, "mimeType"), inline.get("data")
        if not isinstance(data, str) or not data:
            if strict:
                raise _invalid("inlineData.data must be a non-empty base64 string", f"{path}.inlineData")
            return None
        if not _is_image(mime):
            if strict:
                raise _invalid(
                    f"inlineData of type {mime!r} cannot be sent to this model: only images are carried",
                    f"{path}.inlineData.mimeType",
                )
            return None
        return ImagePart(media_type=str(mime), data=data)
    file_data = _get(part, "fileData")
    if isinstance(file_data, dict):
        mime, uri = _get(file_data, "mimeType"), _get(file_data, "fileUri")
        if not isinstance(uri, str) or not uri:
            if strict:
                raise _invalid("fileData.fileUri must be a non-empty string", f"{path}.fileData")
            return None
        if mime is not None and not _is_image(mime):
            if strict:
                raise _invalid(
                    f"fileData of type {mime!r} cannot be sent to this model: only images are carried",
                    f"{path}.fileData.mimeType",
                )
            return None
        return ImagePart(media_type=mime if isinstance(mime, str) else None, url=uri)
    return None


def _tool_result(reply: JSON, path: str, calls: _CallBook, strict: bool) -> ToolResultPart | None:
    name = reply.get("name")
    if not isinstance(name, str) or not name:
        if strict:
            raise _invalid(
                "functionResponse.name must be a non-empty string", f"{path}.functionResponse.name"
            )
        return None
    response = reply.get("response", {})
    if not isinstance(response, dict):
        if strict:
            raise _invalid("functionResponse.response must be an object", f"{path}.functionResponse.response")
        response = {"output": response}
    call_id = calls.answer(reply.get("id"), name)
    if call_id is None:
        if strict:
            raise _invalid(
                f"functionResponse for {name!r} answers no earlier functionCall of that name",
                f"{path}.functionResponse",
            )
        call_id = f"call_{calls.count}"
        calls.count += 1
    content: list[TextPart | ImagePart] = [TextPart(_dumps(response))]
    extra = reply.get("parts")
    for k, sub in enumerate(extra if isinstance(extra, list) else []):
        if isinstance(sub, dict):
            image = _blob_part(sub, f"{path}.functionResponse.parts[{k}]", strict)
            if image is not None:
                content.append(image)
    is_error = "error" in response and "output" not in response
    return ToolResultPart(tool_call_id=call_id, content=content, is_error=is_error, name=name)


def _canonical_parts(raw: Any, *, path: str, role: str, calls: _CallBook, strict: bool) -> list[Part]:
    """One content's Gemini parts -> canonical parts (see the module docstring for signatures)."""
    if not isinstance(raw, list):
        if strict:
            raise _invalid("'parts' must be an array", f"{path}.parts")
        return []
    out: list[Part] = []
    open_thought: ThinkingPart | None = None  # a thought block still waiting for more text or its signature
    for j, part in enumerate(raw):
        part_path = f"{path}.parts[{j}]"
        if not isinstance(part, dict):
            if strict:
                raise _invalid("each part must be an object", part_path)
            continue
        signature = _get(part, "thoughtSignature")
        signature = signature if isinstance(signature, str) and signature else None
        text = part.get("text")
        if _get(part, "thought") is True:
            thought_text = text if isinstance(text, str) else ""
            if open_thought is not None:
                open_thought.text += thought_text
                open_thought.signature = signature
            else:
                open_thought = ThinkingPart(text=thought_text, signature=signature)
                out.append(open_thought)
            if signature is not None:
                open_thought = None
            continue
        open_thought = None
        call = _get(part, "functionCall")
        reply = _get(part, "functionResponse")
        converted: Part | None = None
        if isinstance(text, str):
            converted = TextPart(text) if text else None
        elif isinstance(call, dict):
            name = call.get("name")
            if not isinstance(name, str) or not name:
                if strict:
                    raise _invalid(
                        "functionCall.name must be a non-empty string", f"{part_path}.functionCall"
                    )
                continue
            if strict and role != "assistant":
                raise _invalid("functionCall parts belong in a 'model' turn", f"{part_path}.functionCall")
            args = call.get("args")
            if args is None:
                args = {}
            if not isinstance(args, dict):
                if strict:
                    raise _invalid("functionCall.args must be an object", f"{part_path}.functionCall.args")
                args = {}
            converted = ToolCallPart(
                id=calls.new_call(call.get("id"), name), name=name, arguments=_dumps(args)
            )
        elif isinstance(reply, dict):
            if strict and role != "user":
                raise _invalid(
                    "functionResponse parts belong in a 'user' turn", f"{part_path}.functionResponse"
                )
            converted = _tool_result(reply, part_path, calls, strict)
        else:
            converted = _blob_part(part, part_path, strict)
        # Anything else (executableCode, codeExecutionResult, videoMetadata alone...) is not carried.
        if signature is not None:
            out.append(ThinkingPart(text="", signature=signature))
        if converted is not None:
            out.append(converted)
    # an empty thought without a signature says nothing (and some upstreams reject empty blocks)
    return [p for p in out if not isinstance(p, ThinkingPart) or p.text or p.signature]


# ---- canonical parts -> Gemini parts ------------------------------------------------------------


def _args_of(call: ToolCallPart, strict: bool) -> JSON:
    args = _object_or_none(call.arguments)
    if args is None:
        if strict:
            raise _invalid(
                f"the arguments of tool call {call.id!r} are not a JSON object; Gemini needs one",
                "messages",
            )
        return {}
    return args


def _image_out(part: ImagePart) -> JSON | None:
    if part.data:
        return {"inlineData": {"mimeType": part.media_type or "image/png", "data": part.data}}
    if part.url:
        url = part.url
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            mime = header[5:].split(";", 1)[0] or part.media_type or "image/png"
            return {"inlineData": {"mimeType": mime, "data": data}}
        return {"fileData": {"mimeType": part.media_type or _guess_image_type(url), "fileUri": url}}
    return None


_IMAGE_SUFFIXES: Final[dict[str, str]] = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".heic": "image/heic",
    ".heif": "image/heif",
}


def _guess_image_type(url: str) -> str:
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    for suffix, mime in _IMAGE_SUFFIXES.items():
        if path.endswith(suffix):
            return mime
    return "image/jpeg"


def _tool_response_out(part: ToolResultPart, names: dict[str, str]) -> tuple[JSON, list[JSON]]:
    name = part.name or names.get(part.tool_call_id)
    if not name:
        raise _invalid(
            f"the tool result for {part.tool_call_id!r} answers no earlier tool call; Gemini needs the "
            "function name",
            "messages",
        )
    text = "".join(p.text for p in part.content if isinstance(p, TextPart))
    response = _object_or_none(text) if text.strip() else None
    if response is None:
        response = {"error": text} if part.is_error else {"output": text}
    reply: JSON = {"name": name, "response": response}
    if part.tool_call_id:
        reply["id"] = part.tool_call_id
    images = [out for p in part.content if isinstance(p, ImagePart) and (out := _image_out(p)) is not None]
    return {"functionResponse": reply}, images


def _gemini_parts(parts: list[Part], *, names: dict[str, str], strict: bool) -> list[JSON]:
    """Canonical parts -> Gemini parts; a signature-only ThinkingPart goes onto the next part."""
    out: list[JSON] = []
    pending: str | None = None

    def add(part: JSON) -> None:
        nonlocal pending
        if pending is not None:
            part["thoughtSignature"] = pending
            pending = None
        out.append(part)

    for part in parts:
        if isinstance(part, ThinkingPart):
            if part.text:
                if pending is not None:
                    out.append({"text": "", "thought": True, "thoughtSignature": pending})
                    pending = None
                thought: JSON = {"text": part.text, "thought": True}
                if part.signature:
                    thought["thoughtSignature"] = part.signature
                out.append(thought)
            elif part.signature:
                if pending is not None:
                    out.append({"text": "", "thought": True, "thoughtSignature": pending})
                pending = part.signature
            # redacted thinking (Anthropic) has no Gemini form: not carried.
        elif isinstance(part, TextPart):
            add({"text": part.text})
        elif isinstance(part, ToolCallPart):
            call: JSON = {"name": part.name, "args": _args_of(part, strict)}
            if part.id:
                call["id"] = part.id
            add({"functionCall": call})
        elif isinstance(part, ImagePart):
            image = _image_out(part)
            if image is not None:
                add(image)
        elif strict:  # a tool result: only in requests (a response never holds one)
            reply, images = _tool_response_out(part, names)
            add(reply)
            out.extend(images)
    if pending is not None:
        out.append({"text": "", "thought": True, "thoughtSignature": pending})
    return out


# ---- inbound: Gemini clients --------------------------------------------------------------------


def _parse_system(value: Any) -> list[TextPart]:
    if value is None:
        return []
    if isinstance(value, str):
        return [TextPart(value)] if value else []
    if not isinstance(value, dict):
        raise _invalid("systemInstruction must be a Content object", "systemInstruction")
    parts = value.get("parts")
    if not isinstance(parts, list):
        raise _invalid("systemInstruction.parts must be an array", "systemInstruction.parts")
    out: list[TextPart] = []
    for j, part in enumerate(parts):
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise _invalid("systemInstruction supports text parts only", f"systemInstruction.parts[{j}]")
        if text:
            out.append(TextPart(text))
    return out


def _parse_tools(value: Any) -> list[ToolDef]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _invalid("'tools' must be an array", "tools")
    tools: list[ToolDef] = []
    for i, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise _invalid("each tool must be an object", f"tools[{i}]")
        declarations = _get(tool, "functionDeclarations")
        if declarations is None:
            continue  # googleSearch, codeExecution, urlContext...: Google-run tools, not carried
        if not isinstance(declarations, list):
            raise _invalid("functionDeclarations must be an array", f"tools[{i}].functionDeclarations")
        for k, decl in enumerate(declarations):
            path = f"tools[{i}].functionDeclarations[{k}]"
            if not isinstance(decl, dict) or not isinstance(decl.get("name"), str) or not decl["name"]:
                raise _invalid("each function declaration needs a non-empty 'name'", path)
            description = decl.get("description")
            schema = _get(decl, "parametersJsonSchema")
            if schema is None and decl.get("parameters") is not None:
                schema = openapi_to_json_schema(decl["parameters"])
            if schema is None:
                schema = {"type": "object", "properties": {}}
            if not isinstance(schema, dict):
                raise _invalid("function parameters must be a schema object", f"{path}.parameters")
            tools.append(
                ToolDef(
                    name=decl["name"],
                    description=description if isinstance(description, str) else None,
                    parameters=schema,
                )
            )
    return tools


def _parse_tool_config(value: Any, tools: list[ToolDef]) -> tuple[ToolChoice | None, list[ToolDef]]:
    if value is None:
        return None, tools
    if not isinstance(value, dict):
        raise _invalid("toolConfig must be an object", "toolConfig")
    config = _get(value, "functionCallingConfig")
    if config is None:
        return None, tools
    path = "toolConfig.functionCallingConfig"
    if not isinstance(config, dict):
        raise _invalid("functionCallingConfig must be an object", path)
    mode = config.get("mode", "AUTO")
    canonical = TOOL_MODES_IN.get(mode.upper()) if isinstance(mode, str) else None
    if canonical is None:
        raise _invalid(f"unknown function calling mode {mode!r}; use AUTO, ANY or NONE", f"{path}.mode")
    allowed = _get(config, "allowedFunctionNames")
    if allowed is not None and (
        not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed)
    ):
        raise _invalid("allowedFunctionNames must be an array of strings", f"{path}.allowedFunctionNames")
    if canonical == "required" and allowed:
        if len(allowed) == 1:
            return ToolChoice("tool", allowed[0]), tools
        return ToolChoice("required"), [t for t in tools if t.name in allowed]
    if canonical == "auto":
        return ToolChoice("auto"), tools
    return ToolChoice("none" if canonical == "none" else "required"), tools


def _parse_response_format(config: JSON) -> JSON | None:
    mime = _get(config, "responseMimeType")
    schema = _get(config, "responseJsonSchema")
    if schema is None:
        schema = config.get("_responseJsonSchema")
    if schema is None and _get(config, "responseSchema") is not None:
        schema = openapi_to_json_schema(_get(config, "responseSchema"))
    if mime != "application/json":
        return None
    if isinstance(schema, dict):
        return {"type": "json_schema", "name": "response", "schema": schema}
    return {"type": "json_object"}


def _parse_thinking(value: Any, request: ChatRequest) -> None:
    path = "generationConfig.thinkingConfig"
    if not isinstance(value, dict):
        raise _invalid("thinkingConfig must be an object", path)
    budget = _opt_int(value, "thinkingBudget", path, minimum=-1)
    if budget == 0:
        request.reasoning_enabled = False
    elif budget == -1:
        request.reasoning_enabled = True
    elif budget is not None:
        request.reasoning_enabled = True
        request.reasoning_budget = budget
    level = _get(value, "thinkingLevel")
    if level is not None:
        effort = THINKING_LEVELS.get(level.lower()) if isinstance(level, str) else None
        if effort is None:
            raise _invalid(f"unknown thinkingLevel {level!r}", f"{path}.thinkingLevel")
        request.reasoning_effort = effort
    if _get(value, "includeThoughts") is True and request.reasoning_enabled is None:
        request.reasoning_enabled = True


def _parse_generation_config(value: Any, request: ChatRequest) -> None:
    if value is None:
        return
    path = "generationConfig"
    if not isinstance(value, dict):
        raise _invalid("generationConfig must be an object", path)
    request.temperature = _opt_number(value, "temperature", path)
    request.top_p = _opt_number(value, "topP", path)
    request.top_k = _opt_int(value, "topK", path, minimum=1)
    request.max_tokens = _opt_int(value, "maxOutputTokens", path, minimum=1)
    request.seed = _opt_int(value, "seed", path)
    request.n = _opt_int(value, "candidateCount", path, minimum=1)
    stops = _get(value, "stopSequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise _invalid("stopSequences must be an array of strings", f"{path}.stopSequences")
        request.stop = list(stops)
    request.response_format = _parse_response_format(value)
    thinking = _get(value, "thinkingConfig")
    if thinking is not None:
        _parse_thinking(thinking, request)


_ROLES: Final[dict[Any, str]] = {None: "user", "user": "user", "model": "assistant", "function": "user"}


class GeminiInbound:
    """Gemini clients (``/v1beta/models/{model}:generateContent``) in and out of canonical types."""

    name = "gemini"

    def parse(self, body: dict[str, Any], *, model: str) -> ChatRequest:
        contents = body.get("contents")
        if contents is None:
            raise _invalid("contents is not specified", "contents")
        if not isinstance(contents, list) or not contents:
            raise _invalid("contents must be a non-empty array", "contents")
        calls = _CallBook()
        messages: list[Message] = []
        for i, content in enumerate(contents):
            path = f"contents[{i}]"
            if not isinstance(content, dict):
                raise _invalid("each content must be an object", path)
            role = _ROLES.get(content.get("role"))
            if role is None:
                raise _invalid("Please use a valid role: user, model.", f"{path}.role")
            raw_parts = content.get("parts")
            if not isinstance(raw_parts, list) or not raw_parts:
                raise _invalid("contents.parts must be a non-empty array", f"{path}.parts")
            parts = _canonical_parts(raw_parts, path=path, role=role, calls=calls, strict=True)
            if parts:
                messages.append(Message(role="user" if role == "user" else "assistant", parts=parts))
        if not messages:
            raise _invalid("contents hold nothing this model can read", "contents")
        tools = _parse_tools(body.get("tools"))
        tool_choice, tools = _parse_tool_config(_get(body, "toolConfig"), tools)
        request = ChatRequest(
            model=model,
            messages=messages,
            system=_parse_system(_get(body, "systemInstruction")),
            tools=tools,
            tool_choice=tool_choice,
        )
        _parse_generation_config(_get(body, "generationConfig"), request)
        return request

    def render(self, response: ChatResponse, *, model: str) -> dict[str, Any]:
        parts = _gemini_parts(response.parts, names={}, strict=False)
        candidate: JSON = {
            "content": {"parts": parts, "role": "model"},
            "finishReason": FINISH_TO_GEMINI.get(response.finish_reason, "STOP"),
            "index": 0,
        }
        return {
            "candidates": [candidate],
            "usageMetadata": usage_to_gemini(response.usage),
            "modelVersion": model,
            "responseId": response.id,
        }

    def stream_renderer(
        self, *, model: str, response_id: str, created: int, include_usage: bool
    ) -> GeminiStreamRenderer:
        return GeminiStreamRenderer(model=model, response_id=response_id)


@dataclass(slots=True)
class _BufferedCall:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class GeminiStreamRenderer:
    """Canonical events -> ``data: <GenerateContentResponse>`` SSE events, one per content event.

    Gemini sends function calls whole, so a call's argument deltas are buffered and the call is sent
    as one ``functionCall`` part once complete: when a later call starts and the earlier ones hold a
    complete JSON object (upstreams stream calls one after another), or before any other content, or
    in the last chunk. The last chunk (``close``) carries ``finishReason`` and ``usageMetadata``;
    Gemini clients always get usage, whatever ``include_usage`` says. A signature that does not close
    the thought being streamed (``separate``, or with no thought open) is held and put on the next
    part, as the whole answer does.
    """

    __slots__ = ("_calls", "_finish", "_in_thought", "_model", "_pending_sig", "_response_id", "_usage")

    def __init__(self, *, model: str, response_id: str) -> None:
        self._model = model
        self._response_id = response_id
        self._calls: dict[int, _BufferedCall] = {}
        self._pending_sig: str | None = None
        self._in_thought = False
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    def _chunk(self, parts: list[JSON], *, last: bool = False) -> bytes:
        candidate: JSON = {"content": {"parts": parts, "role": "model"}, "index": 0}
        data: JSON = {"candidates": [candidate]}
        if last:
            if self._finish is not None:
                candidate["finishReason"] = FINISH_TO_GEMINI.get(self._finish, "STOP")
            if self._usage is not None:
                data["usageMetadata"] = usage_to_gemini(self._usage)
        data["modelVersion"] = self._model
        data["responseId"] = self._response_id
        return b"data: " + orjson.dumps(data) + b"\n\n"

    def _signed(self, part: JSON) -> JSON:
        if self._pending_sig is not None:
            part["thoughtSignature"] = self._pending_sig
            self._pending_sig = None
        return part

    def _take_calls(self, *, only_complete: bool, keep: int | None = None) -> list[JSON]:
        parts: list[JSON] = []
        for index in sorted(self._calls):
            if index == keep:
                continue
            call = self._calls[index]
            text = "".join(call.arguments)
            args = _object_or_none(text)
            # Complete means a whole JSON object arrived: no fragment yet is not complete.
            if only_complete and (args is None or not text.strip()):
                continue
            del self._calls[index]
            function: JSON = {"name": call.name, "args": args or {}}
            if call.id:
                function["id"] = call.id
            parts.append(self._signed({"functionCall": function}))
        return parts

    def event(self, event: StreamEvent) -> bytes:
        if isinstance(event, TextDelta | ThinkingDelta):
            parts = self._take_calls(only_complete=False)
            if isinstance(event, TextDelta):
                self._in_thought = False
                if event.text:
                    parts.append(self._signed({"text": event.text}))
            else:
                parts.extend(self._thinking(event))
            return self._chunk(parts) if parts else b""
        if isinstance(event, ToolCallStart):
            # Gemini sends a call whole: a call whose arguments already form a whole JSON object goes
            # out when the next one starts; any other is held until other content or the end (the
            # fragments of several calls may interleave).
            self._in_thought = False
            parts = self._take_calls(only_complete=True, keep=event.index)
            self._calls.setdefault(event.index, _BufferedCall(event.id, event.name))
            return self._chunk(parts) if parts else b""
        if isinstance(event, ToolCallDelta):
            call = self._calls.get(event.index)
            if call is not None:
                call.arguments.append(event.arguments)
            return b""
        if isinstance(event, StreamFinish):
            self._finish = event.finish_reason
            return b""
        if isinstance(event, StreamUsage):
            self._usage = event.usage
            return b""
        if isinstance(event, StreamError):
            return self.error(event.message, event.type)
        return b""  # StreamStart: Gemini has no opening event

    def _thinking(self, event: ThinkingDelta) -> list[JSON]:
        parts: list[JSON] = []
        if event.text:
            if self._pending_sig is not None:
                parts.append({"text": "", "thought": True, "thoughtSignature": self._pending_sig})
                self._pending_sig = None
            part: JSON = {"text": event.text, "thought": True}
            if event.signature:
                part["thoughtSignature"] = event.signature
            parts.append(part)
            self._in_thought = event.signature is None
        elif event.signature:
            if event.separate:  # a signature of its own, for the next part: the thought block ends
                self._in_thought = False
            if self._in_thought:  # the signature closes the thought block being streamed
                parts.append({"text": "", "thought": True, "thoughtSignature": event.signature})
                self._in_thought = False
            else:  # a signature ahead of the part it belongs to
                if self._pending_sig is not None:
                    parts.append({"text": "", "thought": True, "thoughtSignature": self._pending_sig})
                self._pending_sig = event.signature
        return parts

    def close(self) -> bytes:
        parts = self._take_calls(only_complete=False)
        if self._pending_sig is not None:
            parts.append({"text": "", "thought": True, "thoughtSignature": self._pending_sig})
            self._pending_sig = None
        if not parts and self._finish is None and self._usage is None:
            return b""
        return self._chunk(parts or [{"text": ""}], last=True)

    def error(self, message: str, type: str) -> bytes:
        code = ERROR_TYPE_CODES.get(type) or STATUS_CODES.get(type, 500)
        return b"data: " + orjson.dumps(error_body(code, message)) + b"\n\n"


# ---- upstream: Gemini as the model's home --------------------------------------------------------


def _contents_out(messages: list[Message]) -> list[JSON]:
    names = {p.id: p.name for m in messages for p in m.parts if isinstance(p, ToolCallPart)}
    contents: list[JSON] = []
    for message in messages:
        parts = _gemini_parts(message.parts, names=names, strict=True)
        if not parts:
            continue
        if message.role == "assistant":
            calls = [p for p in parts if "functionCall" in p]
            if calls and not any("thoughtSignature" in p for p in parts):
                calls[0]["thoughtSignature"] = PLACEHOLDER_SIGNATURE
        contents.append({"role": "model" if message.role == "assistant" else "user", "parts": parts})
    return contents


def _tool_config_out(choice: ToolChoice) -> JSON:
    if choice.mode == "none":
        return {"functionCallingConfig": {"mode": "NONE"}}
    if choice.mode == "required":
        return {"functionCallingConfig": {"mode": "ANY"}}
    if choice.mode == "tool" and choice.name:
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [choice.name]}}
    return {"functionCallingConfig": {"mode": "AUTO"}}


def _thinking_out(request: ChatRequest) -> JSON | None:
    if request.reasoning_enabled is False:
        return {"thinkingBudget": 0}
    if request.reasoning_budget is not None:
        return {"thinkingBudget": request.reasoning_budget, "includeThoughts": True}
    if request.reasoning_effort is not None:
        budget = EFFORT_BUDGETS.get(request.reasoning_effort.lower(), -1)
        return {"thinkingBudget": budget, "includeThoughts": True}
    if request.reasoning_enabled:
        return {"thinkingBudget": -1, "includeThoughts": True}
    return None


def _generation_config_out(request: ChatRequest) -> JSON:
    config: JSON = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if request.top_k is not None:
        config["topK"] = request.top_k
    if request.max_tokens is not None:
        config["maxOutputTokens"] = request.max_tokens
    if request.stop:
        config["stopSequences"] = list(request.stop)
    if request.seed is not None:
        config["seed"] = request.seed
    if request.n is not None and request.n > 1:
        config["candidateCount"] = request.n
    response_format = request.response_format or {}
    kind = response_format.get("type")
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        nested = response_format.get("json_schema")
        schema = response_format.get("schema")
        if schema is None and isinstance(nested, dict):
            schema = nested.get("schema")
        if kind == "json_schema" and isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    thinking = _thinking_out(request)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


def _first_candidate(data: JSON) -> JSON | None:
    candidates = data.get("candidates")
    if not isinstance(candidates, list):
        return None
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("index", 0) in (0, None):
            return candidate
    return None


def _block_reason(data: JSON) -> str | None:
    feedback = _get(data, "promptFeedback")
    reason = _get(feedback, "blockReason") if isinstance(feedback, dict) else None
    return reason if isinstance(reason, str) and reason != "BLOCK_REASON_UNSPECIFIED" else None


class GeminiUpstream:
    """Canonical requests sent to Gemini, and Gemini's answers read back."""

    name = "gemini"

    def to_body(self, request: ChatRequest, *, upstream_model: str) -> dict[str, Any]:
        """The body for ``{model}:generateContent``; the model itself goes in the URL."""
        body: JSON = {"contents": _contents_out(request.messages)}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": p.text} for p in request.system]}
        if request.tools:
            declarations = []
            for tool in request.tools:
                declaration: JSON = {"name": tool.name}
                if tool.description:
                    declaration["description"] = tool.description
                declaration["parametersJsonSchema"] = tool.parameters or {"type": "object", "properties": {}}
                declarations.append(declaration)
            body["tools"] = [{"functionDeclarations": declarations}]
            if request.tool_choice is not None:
                body["toolConfig"] = _tool_config_out(request.tool_choice)
        config = _generation_config_out(request)
        if config:
            body["generationConfig"] = config
        return body

    def from_body(self, data: dict[str, Any]) -> ChatResponse:
        candidate = _first_candidate(data)
        content = _get(candidate, "content") if candidate is not None else None
        raw_parts = content.get("parts") if isinstance(content, dict) else None
        parts = _canonical_parts(raw_parts or [], path="", role="assistant", calls=_CallBook(), strict=False)
        has_calls = any(isinstance(p, ToolCallPart) for p in parts)
        if candidate is None and _block_reason(data) is not None:
            finish: FinishReason = "content_filter"
        else:
            reason = _get(candidate, "finishReason") if candidate is not None else None
            finish = finish_from_gemini(reason if isinstance(reason, str) else None, has_calls)
        usage = self.usage_from_body(data)
        response_id = _get(data, "responseId")
        model = _get(data, "modelVersion")
        return ChatResponse(
            id=response_id if isinstance(response_id, str) else "",
            model=model if isinstance(model, str) else "",
            parts=parts,
            finish_reason=finish,
            usage=usage if usage is not None else Usage(),
        )

    def stream_parser(self) -> GeminiStreamParser:
        return GeminiStreamParser()

    def usage_from_body(self, data: dict[str, Any]) -> Usage | None:
        meta = _get(data, "usageMetadata")
        return usage_from_gemini(meta) if isinstance(meta, dict) else None


def _event_data(event: bytes) -> bytes | None:
    lines = []
    for line in event.split(b"\n"):
        line = line.rstrip(b"\r")
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines) if lines else None


class GeminiStreamParser:
    """Gemini ``alt=sse`` events -> canonical events.

    Each ``data:`` chunk is a whole GenerateContentResponse holding the next parts. A functionCall part
    (Gemini sends them whole) becomes ToolCallStart plus one ToolCallDelta with all the arguments.
    A ``thoughtSignature`` on a thought part closes that thought (``ThinkingDelta(signature=...)``); one
    on a text or functionCall part is ``ThinkingDelta(signature=..., separate=True)`` just before that
    part's events, as ``from_body`` makes a ``ThinkingPart("", signature)`` before it. Usage is read
    from every chunk's ``usageMetadata`` (the last one is final) and reported once the chunk with
    ``finishReason`` arrived, which is also Gemini's end of stream (``done``).
    """

    __slots__ = ("_calls", "_done", "_started", "_usage")

    def __init__(self) -> None:
        self._calls = _CallBook()
        self._started = False
        self._done = False
        self._usage: Usage | None = None

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @property
    def done(self) -> bool:
        return self._done

    def feed(self, event: bytes) -> list[StreamEvent]:
        payload = _event_data(event)
        if payload is None:
            return []
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return []
        if isinstance(chunk, list) and chunk and isinstance(chunk[0], dict):
            chunk = chunk[0]
        if not isinstance(chunk, dict):
            return []
        error = chunk.get("error")
        if isinstance(error, dict):
            message = error.get("message")
            status = error.get("status")
            return [
                StreamError(
                    message=message if isinstance(message, str) else "upstream error",
                    type=status if isinstance(status, str) else "upstream_error",
                )
            ]
        events: list[StreamEvent] = []
        if not self._started:
            self._started = True
            response_id, model = _get(chunk, "responseId"), _get(chunk, "modelVersion")
            events.append(
                StreamStart(
                    id=response_id if isinstance(response_id, str) else "",
                    model=model if isinstance(model, str) else "",
                )
            )
        meta = _get(chunk, "usageMetadata")
        if isinstance(meta, dict):
            self._usage = usage_from_gemini(meta)
        candidate = _first_candidate(chunk)
        finished = False
        if candidate is not None:
            content = candidate.get("content")
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list):
                events.extend(self._part_events(parts))
            reason = _get(candidate, "finishReason")
            if isinstance(reason, str):
                events.append(StreamFinish(finish_from_gemini(reason, self._calls.count > 0)))
                finished = True
        elif _block_reason(chunk) is not None:
            events.append(StreamFinish("content_filter"))
            finished = True
        if (finished or self._done) and isinstance(meta, dict) and self._usage is not None:
            events.append(StreamUsage(self._usage))
        self._done = self._done or finished
        return events

    def _part_events(self, parts: list[Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        for part in parts:
            if not isinstance(part, dict):
                continue
            signature = _get(part, "thoughtSignature")
            signature = signature if isinstance(signature, str) and signature else None
            text = part.get("text")
            if _get(part, "thought") is True:
                if isinstance(text, str) and text:
                    events.append(ThinkingDelta(text=text))
                if signature is not None:
                    events.append(ThinkingDelta(signature=signature))
                continue
            if signature is not None:  # belongs to this part, not to the thought before it
                events.append(ThinkingDelta(signature=signature, separate=True))
            call = _get(part, "functionCall")
            if isinstance(text, str):
                if text:
                    events.append(TextDelta(text))
            elif isinstance(call, dict) and isinstance(call.get("name"), str):
                index = self._calls.count
                call_id = self._calls.new_call(call.get("id"), call["name"])
                args = call.get("args")
                events.append(ToolCallStart(index=index, id=call_id, name=call["name"]))
                events.append(
                    ToolCallDelta(index=index, arguments=_dumps(args if isinstance(args, dict) else {}))
                )
        return events


# ---- pass-through and model listing -------------------------------------------------------------


def passthrough_body(raw: bytes, body: dict[str, Any], upstream_model: str) -> bytes:
    """The body of a Gemini client's call to a Gemini upstream: unchanged (the model is in the URL)."""
    return raw


def model_entry(model: dict[str, Any]) -> JSON:
    """One model in the shape of ``GET /v1beta/models/{model}``."""
    model_id = str(model["id"])
    entry: JSON = {
        "name": f"models/{model_id}",
        "version": "001",
        "displayName": model.get("display_name") or model_id,
        "description": model.get("description") or "",
    }
    if _count(model.get("content_length")):
        entry["inputTokenLimit"] = model["content_length"]
    if _count(model.get("max_completion_tokens")):
        entry["outputTokenLimit"] = model["max_completion_tokens"]
    entry["supportedGenerationMethods"] = list(SUPPORTED_METHODS)
    return entry


def models_list(models: list[dict[str, Any]]) -> dict[str, Any]:
    """``GET /v1beta/models`` from dicts with ``id``, ``description``, ``content_length``,
    ``max_completion_tokens`` (the 302 model list's fields)."""
    return {"models": [model_entry(m) for m in models]}
