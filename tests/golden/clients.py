"""What a client of each inbound format reads from an answer or a stream, decoded independently of
``omnirelay.dialects`` (so a wrong dialect cannot vouch for itself), plus protocol checks.

``read_response(inbound, body)`` and ``read_stream(inbound, raw)`` return a ``Turn``: the text, the
thinking blocks with their signatures, the tool calls (with the slot each one streamed in: OpenAI's
``index``, Anthropic's block index, the Responses ``output_index``, the Gemini part position), the
usage block, the finish reason and an error event if one came. A stream decoder also lists
``violations``: what the format's own clients would trip on (a delta for a closed Anthropic block, a
Responses sequence number out of order, a chunk after OpenAI's ``[DONE]``...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]


@dataclass
class Call:
    id: str
    name: str
    arguments: str  # JSON text as the client assembled it
    slot: int  # where the call streamed: OpenAI index, Anthropic block, Responses output_index, part


@dataclass
class Thought:
    text: str
    signature: str | None


@dataclass
class Turn:
    text: str = ""
    delivered: str = ""  # text the client saw arrive (deltas), even when the final object omits it
    thoughts: list[Thought] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    usage: JSON | None = None
    finish: str | None = None
    error: JSON | None = None
    last_event: str = ""  # the kind of the stream's last event (OpenAI/Gemini: "data", "error", "done")
    violations: list[str] = field(default_factory=list)

    @property
    def thinking_text(self) -> str:
        return "".join(t.text for t in self.thoughts)

    @property
    def signatures(self) -> list[str]:
        return [t.signature for t in self.thoughts if t.signature]


def _sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) of each SSE event; CRLF or LF framing."""
    out: list[tuple[str | None, str]] = []
    for block in raw.decode().replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        name: str | None = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        out.append((name, "\n".join(data)))
    return out


# -- OpenAI Chat Completions -----------------------------------------------------------------------


def _openai_response(body: JSON) -> Turn:
    message = body["choices"][0]["message"]
    turn = Turn(text=message.get("content") or "", finish=body["choices"][0]["finish_reason"])
    if message.get("reasoning_content"):
        turn.thoughts.append(Thought(message["reasoning_content"], None))
    for k, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        turn.calls.append(Call(call["id"], fn["name"], fn["arguments"], k))
    turn.usage = body.get("usage")
    return turn


def _openai_stream(raw: bytes) -> Turn:
    turn = Turn()
    calls: dict[int, Call] = {}
    reasoning: list[str] = []
    ids: set[str] = set()
    done = False
    for _, data in _sse(raw):
        if done:
            turn.violations.append("an event after data: [DONE]")
        if data == "[DONE]":
            done, turn.last_event = True, "done"
            continue
        chunk = json.loads(data)
        if "error" in chunk:
            turn.error, turn.last_event = chunk["error"], "error"
            continue
        turn.last_event = "data"
        ids.add(chunk["id"])
        if chunk.get("usage"):
            turn.usage = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice.get("delta") or {}
            turn.text += delta.get("content") or ""
            reasoning.append(delta.get("reasoning_content") or "")
            for piece in delta.get("tool_calls") or []:
                index = piece["index"]
                fn = piece.get("function") or {}
                if "id" in piece:
                    if index in calls:
                        turn.violations.append(f"tool call index {index} started twice")
                    calls[index] = Call(piece["id"], fn.get("name", ""), "", index)
                elif index not in calls:
                    turn.violations.append(f"arguments for tool call index {index} before its id")
                    continue
                calls[index].arguments += fn.get("arguments") or ""
            if choice.get("finish_reason"):
                if turn.finish is not None:
                    turn.violations.append("two finish reasons")
                turn.finish = choice["finish_reason"]
    if len(ids) > 1:
        turn.violations.append(f"chunks of one completion carry different ids: {sorted(ids)}")
    if "".join(reasoning):
        turn.thoughts.append(Thought("".join(reasoning), None))
    turn.calls = [calls[k] for k in sorted(calls)]
    turn.delivered = turn.text
    if turn.error is None and not done:
        turn.violations.append("the stream does not end with data: [DONE]")
    return turn


# -- Anthropic Messages ----------------------------------------------------------------------------


def _anthropic_response(body: JSON) -> Turn:
    turn = Turn(finish=body["stop_reason"], usage=body["usage"])
    for k, block in enumerate(body["content"]):
        if block["type"] == "text":
            turn.text += block["text"]
        elif block["type"] == "thinking":
            turn.thoughts.append(Thought(block["thinking"], block["signature"] or None))
        elif block["type"] == "tool_use":
            turn.calls.append(Call(block["id"], block["name"], json.dumps(block["input"]), k))
    return turn


def _anthropic_stream(raw: bytes) -> Turn:
    turn = Turn()
    blocks: dict[int, JSON] = {}
    open_index: int | None = None
    ended = False
    events = _sse(raw)
    for position, (name, data) in enumerate(events):
        payload = json.loads(data)
        kind = payload["type"]
        if name != kind:
            turn.violations.append(f"event name {name!r} for a {kind!r} payload")
        if ended:
            turn.violations.append(f"{kind} after the end of the message")
        turn.last_event = kind
        if position == 0 and kind != "message_start":
            turn.violations.append(f"the stream starts with {kind}, not message_start")
        if kind == "content_block_start":
            index = payload["index"]
            if open_index is not None:
                turn.violations.append(f"block {index} starts while block {open_index} is open")
            if index != len(blocks):
                turn.violations.append(f"block {index} starts out of order")
            block = dict(payload["content_block"])
            block["_json"] = ""
            blocks[index], open_index = block, index
        elif kind == "content_block_delta":
            index, delta = payload["index"], payload["delta"]
            if index != open_index:
                turn.violations.append(f"a {delta['type']} for block {index}, which is not open")
            block = blocks[index]
            if delta["type"] == "text_delta":
                block["text"] += delta["text"]
            elif delta["type"] == "thinking_delta":
                block["thinking"] += delta["thinking"]
            elif delta["type"] == "signature_delta":
                block["signature"] += delta["signature"]
            elif delta["type"] == "input_json_delta":
                block["_json"] += delta["partial_json"]
        elif kind == "content_block_stop":
            if payload["index"] != open_index:
                turn.violations.append(f"block {payload['index']} stops but is not open")
            open_index = None
        elif kind == "message_delta":
            turn.finish = payload["delta"]["stop_reason"]
            turn.usage = payload.get("usage")
        elif kind == "message_stop":
            ended = True
        elif kind == "error":
            turn.error, ended = payload["error"], True
    if open_index is not None and turn.error is None:
        turn.violations.append(f"block {open_index} never stops")
    if not ended:
        turn.violations.append("the stream ends without message_stop or an error event")
    for index in sorted(blocks):
        block = blocks[index]
        if block["type"] == "text":
            turn.text += block["text"]
        elif block["type"] == "thinking":
            turn.thoughts.append(Thought(block["thinking"], block["signature"] or None))
        elif block["type"] == "tool_use":
            turn.calls.append(Call(block["id"], block["name"], block["_json"], index))
    turn.delivered = turn.text
    return turn


# -- Gemini ----------------------------------------------------------------------------------------


class _GeminiReader:
    """Gemini parts -> ``turn``, across chunks: consecutive thought parts merge until a signature
    closes them; a signature on any other part is a signature-only thought ahead of that part."""

    def __init__(self, turn: Turn) -> None:
        self.turn = turn
        self.open_thought: Thought | None = None
        self.slot = 0

    def parts(self, parts: list[JSON]) -> None:
        turn = self.turn
        for part in parts:
            signature = part.get("thoughtSignature")
            if part.get("thought"):
                if self.open_thought is not None:
                    self.open_thought.text += part.get("text", "")
                    self.open_thought.signature = signature
                else:
                    self.open_thought = Thought(part.get("text", ""), signature)
                    turn.thoughts.append(self.open_thought)
                if signature:
                    self.open_thought = None
                continue
            self.open_thought = None
            if signature:
                turn.thoughts.append(Thought("", signature))
            if "text" in part:
                turn.text += part["text"]
            elif "functionCall" in part:
                call = part["functionCall"]
                arguments = json.dumps(call.get("args", {}))
                turn.calls.append(Call(call.get("id", ""), call["name"], arguments, self.slot))
                self.slot += 1


def _gemini_response(body: JSON) -> Turn:
    candidate = body["candidates"][0]
    turn = Turn(finish=candidate.get("finishReason"), usage=body.get("usageMetadata"))
    _GeminiReader(turn).parts(candidate["content"]["parts"])
    return turn


def _gemini_stream(raw: bytes) -> Turn:
    turn = Turn()
    reader = _GeminiReader(turn)
    finished = False
    for _, data in _sse(raw):
        chunk = json.loads(data)
        if finished:
            turn.violations.append("a chunk after the one with finishReason")
        if "error" in chunk:
            turn.error, turn.last_event = chunk["error"], "error"
            continue
        turn.last_event = "data"
        candidate = chunk["candidates"][0]
        reader.parts(candidate["content"]["parts"])
        if "usageMetadata" in chunk:
            turn.usage = chunk["usageMetadata"]
        if "finishReason" in candidate:
            turn.finish, finished = candidate["finishReason"], True
    if turn.error is None and not finished:
        turn.violations.append("no chunk carries a finishReason")
    turn.delivered = turn.text
    return turn


# -- OpenAI Responses ------------------------------------------------------------------------------


def _responses_output(turn: Turn, output: list[JSON]) -> None:
    for k, item in enumerate(output):
        if item["type"] == "message":
            turn.text += "".join(c["text"] for c in item["content"] if c["type"] == "output_text")
        elif item["type"] == "reasoning":
            text = "\n\n".join(s["text"] for s in item.get("summary") or [])
            turn.thoughts.append(Thought(text, item.get("encrypted_content")))
        elif item["type"] == "function_call":
            turn.calls.append(Call(item["call_id"], item["name"], item["arguments"], k))


def _responses_response(body: JSON) -> Turn:
    turn = Turn(finish=body["status"], usage=body.get("usage"))
    _responses_output(turn, body["output"])
    return turn


def _responses_stream(raw: bytes) -> Turn:
    """Reads the final Response (what the SDK's ``get_final_response`` returns) and checks that the
    deltas, read on their own, build the same items."""
    turn = Turn()
    streamed = Turn()
    items: dict[str, JSON] = {}  # item_id -> item being built
    done_items: set[str] = set()
    final: JSON | None = None
    for position, (name, data) in enumerate(_sse(raw)):
        payload = json.loads(data)
        kind = payload["type"]
        turn.last_event = kind
        if name != kind:
            turn.violations.append(f"event name {name!r} for a {kind!r} payload")
        if payload.get("sequence_number") != position:
            turn.violations.append(
                f"{kind} has sequence_number {payload.get('sequence_number')}, not {position}"
            )
        if final is not None:
            turn.violations.append(f"{kind} after the final response event")
        item_id = payload.get("item_id")
        if item_id is not None and (item_id not in items or item_id in done_items):
            turn.violations.append(f"{kind} for item {item_id}, which is not open")
            continue
        if kind == "response.output_item.added":
            item = dict(payload["item"])
            if payload["output_index"] != len(items):
                turn.violations.append(f"item {item['id']} added at output_index {payload['output_index']}")
            item["_text"] = ""
            items[item["id"]] = item
        elif kind in ("response.output_text.delta", "response.reasoning_summary_text.delta"):
            items[payload["item_id"]]["_text"] += payload["delta"]
            if kind == "response.output_text.delta":
                turn.delivered += payload["delta"]
        elif kind == "response.function_call_arguments.delta":
            items[payload["item_id"]]["_text"] += payload["delta"]
        elif kind == "response.function_call_arguments.done":
            if payload["arguments"] != items[payload["item_id"]]["_text"]:
                turn.violations.append(f"arguments.done of {payload['item_id']} differs from its deltas")
        elif kind == "response.output_item.done":
            done = payload["item"]
            if done["id"] not in items or done["id"] in done_items:
                turn.violations.append(f"output_item.done for {done['id']}, which is not open")
                continue
            done_items.add(done["id"])
            built = items[done["id"]]["_text"]
            if done["type"] == "function_call" and done["arguments"] != built:
                turn.violations.append(f"item {done['id']} is done with other arguments than streamed")
            if done["type"] == "message" and done["content"][0]["text"] != built:
                turn.violations.append(f"item {done['id']} is done with other text than streamed")
            _responses_output(streamed, [done])
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            final = payload["response"]
        elif kind == "error":
            turn.error = payload
    if final is None:
        turn.violations.append("the stream has no final response event")
        return turn
    if final["status"] != "failed" and len(done_items) != len(items):
        turn.violations.append("the response ends with items still open")
    turn.finish, turn.usage = final["status"], final.get("usage")
    if final["status"] == "failed":
        turn.error = turn.error or final.get("error")
    _responses_output(turn, final["output"])
    final_arguments = [c.arguments for c in turn.calls]
    if final["status"] != "failed" and final_arguments != [c.arguments for c in streamed.calls]:
        turn.violations.append("the final response's calls differ from the streamed items")
    return turn


_RESPONSE_READERS = {
    "openai_chat": _openai_response,
    "anthropic": _anthropic_response,
    "gemini": _gemini_response,
    "openai_responses": _responses_response,
}
_STREAM_READERS = {
    "openai_chat": _openai_stream,
    "anthropic": _anthropic_stream,
    "gemini": _gemini_stream,
    "openai_responses": _responses_stream,
}


def read_response(inbound: str, body: JSON) -> Turn:
    return _RESPONSE_READERS[inbound](body)


def read_stream(inbound: str, raw: bytes) -> Turn:
    return _STREAM_READERS[inbound](raw)


def usage_numbers(inbound: str, usage: JSON) -> dict[str, int]:
    """A usage block in each format's own terms, as plain numbers: total input, cache read, cache
    write (where the format has it), output, reasoning (where it has it)."""
    if inbound == "openai_chat":
        return {
            "input": usage["prompt_tokens"],
            "cache_read": usage["prompt_tokens_details"]["cached_tokens"],
            "output": usage["completion_tokens"],
            "reasoning": usage["completion_tokens_details"]["reasoning_tokens"],
            "total": usage["total_tokens"],
        }
    if inbound == "anthropic":
        uncached = usage["input_tokens"]
        read, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
        return {
            "input": uncached + read + write,
            "uncached": uncached,
            "cache_read": read,
            "cache_write": write,
            "output": usage["output_tokens"],
        }
    if inbound == "gemini":
        thoughts = usage.get("thoughtsTokenCount", 0)
        return {
            "input": usage["promptTokenCount"],
            "cache_read": usage.get("cachedContentTokenCount", 0),
            "output": usage["candidatesTokenCount"] + thoughts,
            "reasoning": thoughts,
            "total": usage["totalTokenCount"],
        }
    return {
        "input": usage["input_tokens"],
        "cache_read": usage["input_tokens_details"]["cached_tokens"],
        "cache_write": usage["input_tokens_details"]["cache_write_tokens"],
        "output": usage["output_tokens"],
        "reasoning": usage["output_tokens_details"]["reasoning_tokens"],
        "total": usage["total_tokens"],
    }
