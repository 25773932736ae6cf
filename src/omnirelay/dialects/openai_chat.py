"""OpenAI Chat Completions on the wire: request checks, the pass-through rewrite, stream metering."""

from __future__ import annotations

from typing import Any

import orjson

from omnirelay.core.tokens import count_messages, count_text, count_tools
from omnirelay.core.usage import Usage, from_openai_usage
from omnirelay.errors import InvalidRequest

DONE_EVENT = b"data: [DONE]"


def parse_chat_request(raw: bytes) -> dict[str, Any]:
    """Decode and check the fields the gateway itself relies on; every other field passes through."""
    if not raw:
        raise InvalidRequest("The request body is empty; send a JSON chat completion request.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request ({exc.args[0]}).") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    model = body.get("model")
    if model is None:
        raise InvalidRequest("you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' must be a non-empty string", param="model")
    messages = body.get("messages")
    if messages is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(
                f"Invalid value for 'messages[{i}]': each message must be an object with a 'role'.",
                param=f"messages[{i}]",
            )
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise InvalidRequest(f"'{name}' must be a non-negative integer", param=name)
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    return body


def wants_stream(body: dict[str, Any]) -> bool:
    return body.get("stream") is True


def client_wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def max_output_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    if not isinstance(value, int) or value <= 0:
        return None
    n = body.get("n")
    return value * n if isinstance(n, int) and n > 1 else value


def estimate_input_tokens(body: dict[str, Any]) -> int:
    return count_messages(body.get("messages")) + count_tools(body.get("tools"))


def upstream_body(raw: bytes, body: dict[str, Any], upstream_model: str) -> bytes:
    """The body sent upstream: the client's own bytes unless the model name or usage option must change.

    Streams always ask for usage, so a stream is billed from the upstream's own count.
    """
    stream = wants_stream(body)
    needs_usage = stream and not client_wants_usage(body)
    if upstream_model == body["model"] and not needs_usage:
        return raw
    out = dict(body)
    out["model"] = upstream_model
    if needs_usage:
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        out["stream_options"] = options
    return orjson.dumps(out)


def usage_from_response(data: bytes) -> tuple[Usage | None, dict[str, Any] | None]:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(parsed, dict):
        return None, None
    usage = parsed.get("usage")
    return (from_openai_usage(usage) if isinstance(usage, dict) else None), parsed


def text_of_response(parsed: dict[str, Any]) -> str:
    parts: list[str] = []
    for choice in parsed.get("choices") or []:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            for field in ("content", "reasoning_content"):
                if isinstance(message.get(field), str):
                    parts.append(message[field])
            for call in message.get("tool_calls") or []:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    parts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return "".join(parts)


def _event_data(event: bytes) -> bytes | None:
    """The data payload of one SSE event (several ``data:`` lines are joined with newlines)."""
    if event.startswith(b"data:") and b"\n" not in event:
        payload = event[5:]
        return payload[1:] if payload.startswith(b" ") else payload
    lines = []
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            lines.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(lines) if lines else None


class StreamMeter:
    """Reads a chat stream on the side: the upstream's usage, or the text to count if none comes."""

    __slots__ = ("_drop_usage_chunk", "_text", "done", "error", "usage")

    def __init__(self, client_wants_usage: bool) -> None:
        self._drop_usage_chunk = not client_wants_usage
        self._text: list[str] = []
        self.usage: Usage | None = None
        self.done = False
        self.error: dict[str, Any] | None = None

    def feed(self, event: bytes) -> bool:
        """Record one event; return False when the event must not reach the client."""
        data = _event_data(event)
        if data is None:
            return True
        if data == b"[DONE]":
            self.done = True
            return True
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(chunk, dict):
            return True
        if isinstance(chunk.get("error"), dict):
            self.error = chunk["error"]
            return True
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if isinstance(usage, dict):
            self.usage = from_openai_usage(usage)
            if self._drop_usage_chunk and not choices:
                return False
        if isinstance(choices, list):
            for choice in choices:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if not isinstance(delta, dict):
                    continue
                for field in ("content", "reasoning_content"):
                    value = delta.get(field)
                    if isinstance(value, str):
                        self._text.append(value)
                for call in delta.get("tool_calls") or []:
                    fn = call.get("function") if isinstance(call, dict) else None
                    if isinstance(fn, dict):
                        self._text.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
        return True

    def final_usage(self, input_estimate: int) -> Usage:
        if self.usage is not None:
            return self.usage
        return Usage(input_uncached=input_estimate, output=count_text("".join(self._text)), estimated=True)
