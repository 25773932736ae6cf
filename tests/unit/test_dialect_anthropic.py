"""omnirelay.dialects.anthropic: parse, render, stream rendering, request bodies, answers, stream parsing."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from anthropic.lib.streaming._messages import accumulate_event

from omnirelay.core.chat import (
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
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
from omnirelay.dialects.anthropic import (
    DEFAULT_MAX_TOKENS,
    EFFORT_BUDGETS,
    AnthropicInbound,
    AnthropicStreamParser,
    AnthropicUpstream,
    passthrough_body,
    translation_losses,
    usage_from_anthropic,
)
from omnirelay.dialects.base import InboundDialect, UpstreamDialect
from omnirelay.errors import InvalidRequest

INBOUND = AnthropicInbound()
UPSTREAM = AnthropicUpstream()
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAEBAQ=="
SIG = "EqQBCkYIBRgCIkBvSz1sbGx0ZXN0c2lnbmF0dXJl"
WEATHER_SCHEMA: Any = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def _parse(body: dict[str, Any], model: str = "claude-public") -> ChatRequest:
    return INBOUND.parse(body, model=model)


def _invalid(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        _parse(body)
    assert info.value.http_status == 400
    return info.value


def _base(**extra: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 256, "messages": [{"role": "user", "content": "Hi"}], **extra}


def test_protocols_are_implemented() -> None:
    inbound: InboundDialect = INBOUND
    upstream: UpstreamDialect = UPSTREAM
    assert inbound.name == upstream.name == "anthropic"


# ---- parse ----------------------------------------------------------------------------------------


def test_parse_minimal_request() -> None:
    request = _parse(
        {"model": "claude-x", "max_tokens": 100, "system": "Be brief.", "messages": _base()["messages"]}
    )
    assert request.model == "claude-public"
    assert request.max_tokens == 100
    assert request.system == [TextPart("Be brief.")]
    assert request.messages == [Message("user", [TextPart("Hi")])]
    assert request.stream is False
    assert request.tools == [] and request.tool_choice is None
    assert request.reasoning_enabled is None and request.reasoning_budget is None


def test_parse_every_option() -> None:
    body = _base(
        system=[
            {"type": "text", "text": "One."},
            {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}},
        ],
        tools=[
            {"name": "get_weather", "description": "Weather.", "input_schema": WEATHER_SCHEMA},
            {"type": "custom", "name": "get_time", "input_schema": {"type": "object"}},
        ],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        temperature=0.5,
        top_p=0.9,
        top_k=40,
        stop_sequences=["END"],
        metadata={"user_id": "user-7"},
        thinking={"type": "enabled", "budget_tokens": 2048},
        output_config={"effort": "high", "format": {"type": "json_schema", "schema": WEATHER_SCHEMA}},
        stream=True,
    )
    request = _parse(body)
    assert request.system == [TextPart("One."), TextPart("Two.")]
    assert request.tools == [
        ToolDef("get_weather", "Weather.", WEATHER_SCHEMA),
        ToolDef("get_time", None, {"type": "object"}),
    ]
    assert request.tool_choice == ToolChoice("tool", "get_weather")
    assert request.parallel_tool_calls is False
    assert (request.temperature, request.top_p, request.top_k) == (0.5, 0.9, 40)
    assert request.stop == ["END"]
    assert request.user == "user-7"
    assert (request.reasoning_enabled, request.reasoning_budget, request.reasoning_effort) == (
        True,
        2048,
        "high",
    )
    assert request.response_format == {
        "type": "json_schema",
        "name": "output",
        "schema": WEATHER_SCHEMA,
        "strict": True,
    }
    assert request.stream is True


def test_parse_content_blocks() -> None:
    body = _base(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "Let me check.", "signature": SIG},
                    {"type": "redacted_thinking", "data": "opaque=="},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "Sunny"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_02",
                        "is_error": True,
                        "content": [
                            {"type": "text", "text": "Clock broken; photo:"},
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/jpeg", "data": JPEG},
                            },
                        ],
                    },
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ]
    )
    messages = _parse(body).messages
    assert messages[0].parts == [
        TextPart("Look:"),
        ImagePart(media_type="image/png", data=PNG),
        ImagePart(url="https://example.com/cat.jpg"),
    ]
    assert messages[1].parts == [
        ThinkingPart("Let me check.", signature=SIG),
        ThinkingPart(redacted="opaque=="),
        TextPart("Checking."),
        ToolCallPart("toolu_01", "get_weather", '{"city":"Paris"}'),
        ToolCallPart("toolu_02", "get_time", "{}"),
    ]
    assert messages[2].parts == [
        ToolResultPart("toolu_01", [TextPart("Sunny")]),
        ToolResultPart(
            "toolu_02",
            [TextPart("Clock broken; photo:"), ImagePart(media_type="image/jpeg", data=JPEG)],
            is_error=True,
        ),
        TextPart("Thanks"),
    ]


@pytest.mark.parametrize(
    ("thinking", "enabled", "budget"),
    [
        ({"type": "disabled"}, False, None),
        ({"type": "adaptive"}, True, None),
        ({"type": "enabled", "budget_tokens": 1024}, True, 1024),
    ],
)
def test_parse_thinking_modes(thinking: dict[str, Any], enabled: bool, budget: int | None) -> None:
    request = _parse(_base(thinking=thinking))
    assert (request.reasoning_enabled, request.reasoning_budget) == (enabled, budget)


def test_parse_tool_choice_modes() -> None:
    modes = {"auto": "auto", "any": "required", "none": "none"}
    for anthropic_mode, canonical in modes.items():
        request = _parse(_base(tool_choice={"type": anthropic_mode}))
        assert request.tool_choice == ToolChoice(canonical)  # type: ignore[arg-type]
        assert request.parallel_tool_calls is None


def test_missing_max_tokens_is_refused() -> None:
    body = _base()
    del body["max_tokens"]
    assert _invalid(body).param == "max_tokens"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"messages": None}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": ["text"]}]}, "messages[0].content[0]"),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": "x"}]}]},
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}]}
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "base64", "data": PNG}}],
                    }
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "thinking"}]}]},
            "messages[0].content[0].thinking",
        ),
        ({"system": 3}, "system"),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"temperature": 1.5}, "temperature"),
        ({"top_p": "high"}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"metadata": {"user_id": 7}}, "metadata.user_id"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, "thinking.budget_tokens"),
        ({"thinking": "on"}, "thinking"),
        ({"output_config": {"format": {"type": "xml"}}}, "output_config.format"),
        ({"stream": "yes"}, "stream"),
    ],
)
def test_invalid_requests_name_the_param(change: dict[str, Any], param: str) -> None:
    assert _invalid(_base(**change)).param == param


def test_valid_but_untranslatable_content_is_left_out_and_listed() -> None:
    """The engine parses pass-through calls too, so valid Anthropic content without a canonical form
    must not be refused; ``translation_losses`` lists what a translation would leave out."""
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}
    body = _base(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "text", "media_type": "text/plain", "data": "Notes."},
                    },
                    {"type": "document", "source": pdf},
                    {"type": "image", "source": {"type": "file", "file_id": "file_1"}},
                    {"type": "text", "text": "Summarise."},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "server_tool_use",
                        "id": "srvtoolu_1",
                        "name": "web_search",
                        "input": {"q": "x"},
                    },
                    {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}],
                    }
                ],
            },
        ],
        tools=[
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"name": "f", "input_schema": {"type": "object"}},
        ],
        thinking={"type": "between_tools"},
    )
    request = _parse(body)
    assert request.messages[0].parts == [TextPart("Notes."), TextPart("Summarise.")]
    assert request.messages[1].parts == [ToolCallPart("toolu_1", "f", "{}")]
    assert request.messages[2].parts == [ToolResultPart("toolu_1", [])]
    assert [t.name for t in request.tools] == ["f"]
    assert request.reasoning_enabled is None
    assert translation_losses(body) == [
        "messages[0].content[1]: document with a source of type 'base64'",
        "messages[0].content[2].source: image source of type 'file'",
        "messages[1].content[0]: content block of type 'server_tool_use'",
        "messages[1].content[1]: content block of type 'web_search_tool_result'",
        "messages[2].content[0].content[0]: tool_result content of type 'search_result'",
        "tools[0]: server tool of type 'web_search_20250305'",
        "thinking: thinking of type 'between_tools'",
    ]
    assert translation_losses(_base()) == []


# ---- render ---------------------------------------------------------------------------------------


def _response(**extra: Any) -> ChatResponse:
    values: dict[str, Any] = {
        "id": "msg_01",
        "model": "upstream-model",
        "parts": [TextPart("Hello")],
        "finish_reason": "stop",
        "usage": Usage(input_uncached=10, input_cache_read=20, input_cache_write=5, output=7),
    }
    values.update(extra)
    return ChatResponse(**values)


def test_render_message_object() -> None:
    response = _response(
        parts=[
            ThinkingPart("Hmm.", signature=SIG),
            ThinkingPart(redacted="opaque=="),
            TextPart(""),
            TextPart("Let me look."),
            ToolCallPart("call_1", "get_weather", '{"city": "Paris"}'),
            ToolCallPart("call_2", "get_time", ""),
            ImagePart(media_type="image/png", data=PNG),
        ],
        finish_reason="tool_calls",
    )
    assert INBOUND.render(response, model="claude-public") == {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-public",
        "content": [
            {"type": "thinking", "thinking": "Hmm.", "signature": SIG},
            {"type": "redacted_thinking", "data": "opaque=="},
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 5,
            "cache_read_input_tokens": 20,
            "output_tokens": 7,
        },
    }


@pytest.mark.parametrize(
    ("finish", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("stop_sequence", "stop_sequence"),
        ("content_filter", "refusal"),
        ("error", "end_turn"),
    ],
)
def test_render_stop_reasons(finish: str, stop_reason: str) -> None:
    rendered = INBOUND.render(_response(finish_reason=finish, stop_sequence="END"), model="m")
    assert rendered["stop_reason"] == stop_reason
    assert rendered["stop_sequence"] == ("END" if stop_reason == "stop_sequence" else None)


def test_render_stop_with_tool_calls_is_tool_use() -> None:
    response = _response(parts=[ToolCallPart("c", "f", "{}")], finish_reason="stop")
    assert INBOUND.render(response, model="m")["stop_reason"] == "tool_use"


# ---- stream rendering -----------------------------------------------------------------------------


def _sse(stream: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Split SSE bytes into (event name, data); every event must be ``event:`` + ``data:`` lines."""
    assert stream.endswith(b"\n\n") or not stream
    out = []
    for chunk in stream.split(b"\n\n"):
        if not chunk:
            continue
        head, data = chunk.split(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: ")
        name, payload = head[7:].decode(), orjson.loads(data[6:])
        assert payload["type"] == name
        out.append((name, payload))
    return out


def _snapshot(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The final message the anthropic SDK builds from these events."""
    snapshot: Any = None
    buffers: dict[int, bytes] = {}
    for name, data in events:
        if name in ("ping", "error"):
            continue
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=buffers)  # type: ignore[arg-type]
    result: dict[str, Any] = snapshot.to_dict()
    return result


def _render(events: list[StreamEvent], **kwargs: Any) -> bytes:
    renderer = INBOUND.stream_renderer(
        model=kwargs.get("model", "claude-public"), response_id="msg_gw", created=0, include_usage=False
    )
    return b"".join(renderer.event(e) for e in events) + renderer.close()


def test_stream_renderer_text_with_usage_at_the_end() -> None:
    usage = Usage(input_uncached=12, input_cache_read=3, output=4)
    events = _sse(
        _render(
            [
                StreamStart("chatcmpl-1", "gpt-x"),
                TextDelta("Hello"),
                TextDelta(" world"),
                StreamFinish("stop"),
                StreamUsage(usage),
            ]
        )
    )
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert start["id"] == "msg_gw" and start["model"] == "claude-public" and start["content"] == []
    assert start["usage"]["input_tokens"] == 0
    assert events[6][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {
            "input_tokens": 12,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 3,
            "output_tokens": 4,
        },
    }
    final = _snapshot(events)
    assert final["content"] == [{"type": "text", "text": "Hello world"}]
    assert final["usage"]["input_tokens"] == 12 and final["usage"]["output_tokens"] == 4


def test_stream_renderer_usage_known_at_start_goes_into_message_start() -> None:
    usage = Usage(input_uncached=30, input_cache_write=8, output=1)
    events = _sse(
        _render([StreamStart("m", "x"), StreamUsage(usage), TextDelta("Hi"), StreamFinish("length")])
    )
    assert events[0][1]["message"]["usage"] == {
        "input_tokens": 30,
        "cache_creation_input_tokens": 8,
        "cache_read_input_tokens": 0,
        "output_tokens": 1,
    }
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_stream_renderer_blocks_per_kind_and_per_tool_call() -> None:
    stream = _render(
        [
            StreamStart("x", "y"),
            ThinkingDelta(text="Let me "),
            ThinkingDelta(text="think."),
            ThinkingDelta(signature=SIG),
            ThinkingDelta(redacted="opaque=="),
            TextDelta("Calling tools."),
            ToolCallStart(0, "call_a", "get_weather"),
            ToolCallDelta(0, '{"city":'),
            ToolCallDelta(0, '"Paris"}'),
            ToolCallStart(1, "call_b", "get_time"),
            ToolCallDelta(1, ""),
            ToolCallDelta(1, "{}"),
            StreamFinish("tool_calls"),
            StreamUsage(Usage(input_uncached=5, output=9)),
        ]
    )
    events = _sse(stream)
    starts = [(d["index"], d["content_block"]["type"]) for n, d in events if n == "content_block_start"]
    assert starts == [
        (0, "thinking"),
        (1, "redacted_thinking"),
        (2, "text"),
        (3, "tool_use"),
        (4, "tool_use"),
    ]
    stops = [d["index"] for n, d in events if n == "content_block_stop"]
    assert stops == [0, 1, 2, 3, 4]
    deltas = [(d["index"], d["delta"]["type"]) for n, d in events if n == "content_block_delta"]
    assert deltas == [
        (0, "thinking_delta"),
        (0, "thinking_delta"),
        (0, "signature_delta"),
        (2, "text_delta"),
        (3, "input_json_delta"),
        (3, "input_json_delta"),
        (4, "input_json_delta"),
    ]
    final = _snapshot(events)
    assert final["stop_reason"] == "tool_use"
    assert final["content"] == [
        {"type": "thinking", "thinking": "Let me think.", "signature": SIG},
        {"type": "redacted_thinking", "data": "opaque=="},
        {"type": "text", "text": "Calling tools."},
        {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_b", "name": "get_time", "input": {}},
    ]


def test_stream_renderer_text_after_tool_opens_a_new_block() -> None:
    events = _sse(_render([TextDelta("a"), ToolCallStart(0, "c", "f"), TextDelta("b"), StreamFinish("stop")]))
    starts = [d["content_block"]["type"] for n, d in events if n == "content_block_start"]
    assert starts == ["text", "tool_use", "text"]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"  # stop with a tool call


def test_stream_renderer_empty_stream_still_frames_a_message() -> None:
    assert [n for n, _ in _sse(_render([]))] == ["message_start", "ping", "message_delta", "message_stop"]


def test_stream_renderer_stop_sequence() -> None:
    events = _sse(_render([TextDelta("x"), StreamFinish("stop_sequence", "END")]))
    assert events[-2][1]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}


def test_stream_renderer_error_event() -> None:
    renderer = INBOUND.stream_renderer(model="m", response_id="r", created=0, include_usage=True)
    first = renderer.event(TextDelta("partial"))
    assert b"message_start" in first
    error = renderer.error("The upstream connection failed during the stream.", "upstream_error")
    assert error == (
        b"event: error\n"
        b'data: {"type":"error","error":{"type":"api_error",'
        b'"message":"The upstream connection failed during the stream."}}\n\n'
    )
    assert renderer.close() == b""
    assert renderer.event(TextDelta("late")) == b""


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("overloaded_error", "overloaded_error"),
        ("rate_limit_error", "rate_limit_error"),
        ("invalid_request_error", "invalid_request_error"),
        ("upstream_timeout", "timeout_error"),
        ("unauthorized", "authentication_error"),
        ("whatever", "api_error"),
    ],
)
def test_stream_error_types(given: str, sent: str) -> None:
    renderer = INBOUND.stream_renderer(model="m", response_id="r", created=0, include_usage=True)
    [(name, data)] = _sse(renderer.event(StreamError("boom", given)))
    assert name == "error" and data["error"] == {"type": sent, "message": "boom"}


# ---- to_body --------------------------------------------------------------------------------------


def _body(request: ChatRequest, model: str = "claude-upstream") -> dict[str, Any]:
    return UPSTREAM.to_body(request, upstream_model=model)


def _request(*messages: Message, **extra: Any) -> ChatRequest:
    return ChatRequest(
        model="public", messages=list(messages) or [Message("user", [TextPart("Hi")])], **extra
    )


def test_to_body_minimal_uses_default_max_tokens() -> None:
    body = _body(_request(system=[TextPart("Be brief."), TextPart("")]))
    assert body == {
        "model": "claude-upstream",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
    }


def test_to_body_merges_turns_and_puts_tool_results_first() -> None:
    body = _body(
        _request(
            Message("user", [TextPart("What is the weather?")]),
            Message("user", [TextPart("In Paris.")]),
            Message("assistant", [TextPart(""), ToolCallPart("call:1/x", "get_weather", '{"city":"Paris"}')]),
            Message("assistant", [ToolCallPart("call_2", "get_time", "not json")]),
            Message("user", [TextPart("Here you go.")]),
            Message("user", [ToolResultPart("call:1/x", [TextPart("Sunny")])]),
            Message("user", [ToolResultPart("call_2", [TextPart("")], is_error=True)]),
        )
    )
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is the weather?"},
                {"type": "text", "text": "In Paris."},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1_x", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1_x",
                    "content": [{"type": "text", "text": "Sunny"}],
                },
                {"type": "tool_result", "tool_use_id": "call_2", "is_error": True},
                {"type": "text", "text": "Here you go."},
            ],
        },
    ]


def test_to_body_images() -> None:
    body = _body(
        _request(
            Message(
                "user",
                [
                    ImagePart(media_type="image/webp", data="UklGRxxx"),
                    ImagePart(data=JPEG),
                    ImagePart(url="https://example.com/a.png", detail="high"),
                    ImagePart(url=f"data:image/gif;base64,{PNG}"),
                    ImagePart(url=f"data:;base64,{PNG}"),
                    ToolResultPart("t", [ImagePart(media_type="image/png", data=PNG)]),
                ],
            )
        )
    )
    content = body["messages"][0]["content"]
    assert content[0]["type"] == "tool_result"
    assert content[0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    ]
    assert [c["source"] for c in content[1:]] == [
        {"type": "base64", "media_type": "image/webp", "data": "UklGRxxx"},
        {"type": "base64", "media_type": "image/jpeg", "data": JPEG},
        {"type": "url", "url": "https://example.com/a.png"},
        {"type": "base64", "media_type": "image/gif", "data": PNG},
        {"type": "base64", "media_type": "image/png", "data": PNG},
    ]


def test_thinking_round_trip_keeps_signatures() -> None:
    """An Anthropic conversation parsed and rebuilt carries every block, signatures included."""
    messages: Any = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "I should call the tool.", "signature": SIG},
                {"type": "redacted_thinking", "data": "opaque=="},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01",
                    "content": [
                        {"type": "text", "text": "Sunny"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                    ],
                    "is_error": True,
                }
            ],
        },
    ]
    original = {
        "model": "claude-x",
        "max_tokens": 4000,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": messages,
        "tools": [{"name": "get_weather", "description": "Weather.", "input_schema": WEATHER_SCHEMA}],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stop_sequences": ["END"],
        "metadata": {"user_id": "u1"},
        "stream": True,
    }
    rebuilt = _body(_parse(copy.deepcopy(original)), model="claude-x")
    assert rebuilt == original


def test_unsigned_thinking_is_not_replayed() -> None:
    body = _body(
        _request(Message("user", [TextPart("a")]), Message("assistant", [ThinkingPart("hmm"), TextPart("b")]))
    )
    assert body["messages"][1]["content"] == [{"type": "text", "text": "b"}]


@pytest.mark.parametrize(
    ("choice", "parallel", "sent"),
    [
        (None, None, None),
        (ToolChoice("auto"), None, {"type": "auto"}),
        (ToolChoice("required"), None, {"type": "any"}),
        (ToolChoice("none"), None, {"type": "none"}),
        (ToolChoice("tool", "f"), None, {"type": "tool", "name": "f"}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
        (ToolChoice("none"), False, {"type": "none"}),
        (None, True, None),
    ],
)
def test_to_body_tool_choice(
    choice: ToolChoice | None, parallel: bool | None, sent: dict[str, Any] | None
) -> None:
    tools = [ToolDef("f", "Does f.", {"type": "object", "properties": {}}), ToolDef("g", None, {})]
    body = _body(_request(tools=tools, tool_choice=choice, parallel_tool_calls=parallel))
    assert body.get("tool_choice") == sent
    assert body["tools"] == [
        {"name": "f", "description": "Does f.", "input_schema": {"type": "object", "properties": {}}},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
    ]


def test_to_body_tool_choice_without_tools_is_dropped() -> None:
    assert "tool_choice" not in _body(_request(tool_choice=ToolChoice("required")))


@pytest.mark.parametrize(("effort", "budget"), sorted(EFFORT_BUDGETS.items()))
def test_reasoning_effort_becomes_a_budget(effort: str, budget: int) -> None:
    body = _body(_request(reasoning_effort=effort, max_tokens=100_000))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 100_000


def test_reasoning_budget_rules() -> None:
    assert _body(_request(reasoning_effort="unknown", max_tokens=20_000))["thinking"]["budget_tokens"] == 8192
    assert _body(_request(reasoning_enabled=True, max_tokens=20_000))["thinking"]["budget_tokens"] == 8192
    assert _body(_request(reasoning_budget=10, max_tokens=20_000))["thinking"]["budget_tokens"] == 1024
    # the client's max_tokens covers thinking: the budget shrinks to fit
    body = _body(_request(reasoning_effort="high", max_tokens=5000))
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (5000, 4999)
    # no room for the smallest budget, or no max_tokens: max_tokens grows
    body = _body(_request(reasoning_budget=2048, max_tokens=500))
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (2548, 2048)
    body = _body(_request(reasoning_effort="high"))
    assert (body["max_tokens"], body["thinking"]["budget_tokens"]) == (24576 + DEFAULT_MAX_TOKENS, 24576)
    # turned off
    assert _body(_request(reasoning_enabled=False))["thinking"] == {"type": "disabled"}
    assert _body(_request(reasoning_effort="none"))["thinking"] == {"type": "disabled"}
    assert "thinking" not in _body(_request())


def test_thinking_drops_sampling_options_and_yields_to_forced_tools() -> None:
    body = _body(_request(reasoning_effort="low", temperature=0.2, top_p=0.5, top_k=5, max_tokens=9000))
    assert "temperature" not in body and "top_p" not in body and "top_k" not in body
    assert _body(_request(reasoning_effort="low", top_p=0.97, max_tokens=9000))["top_p"] == 0.97
    forced = _body(
        _request(reasoning_effort="low", tools=[ToolDef("f", None, {})], tool_choice=ToolChoice("required"))
    )
    assert "thinking" not in forced and forced["tool_choice"] == {"type": "any"}


def test_to_body_sampling_and_misc() -> None:
    body = _body(
        _request(temperature=1.7, top_p=0.8, top_k=3, stop=["x", "y"], user="u9", stream=True, seed=4, n=1)
    )
    assert body["temperature"] == 1.0  # OpenAI's 0-2 range clamped to Anthropic's 0-1
    assert (body["top_p"], body["top_k"]) == (0.8, 3)
    assert body["stop_sequences"] == ["x", "y"]
    assert body["metadata"] == {"user_id": "u9"}
    assert body["stream"] is True
    assert "seed" not in body and "n" not in body


def test_response_format_becomes_a_system_instruction() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = _body(
        _request(
            system=[TextPart("Be brief.")],
            response_format={"type": "json_schema", "name": "thing", "schema": schema, "strict": True},
        )
    )
    assert body["system"][0] == {"type": "text", "text": "Be brief."}
    assert '{"type":"object","properties":{"a":{"type":"integer"}}}' in body["system"][1]["text"]
    assert "JSON" in _body(_request(response_format={"type": "json_object"}))["system"][0]["text"]


# ---- from_body ------------------------------------------------------------------------------------

RECORDED_MESSAGE: Any = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants the weather.", "signature": SIG},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
        {"type": "text", "text": "I'll check that for you."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"city": "Paris"},
        },
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2048,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 89,
        "service_tier": "standard",
    },
}


def test_from_body_recorded_message() -> None:
    response = UPSTREAM.from_body(RECORDED_MESSAGE)
    assert response.id == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.parts == [
        ThinkingPart("The user wants the weather.", signature=SIG),
        ThinkingPart(redacted="EmwKAhgBEgy3va3pzix/LafPsn4a"),
        TextPart("I'll check that for you."),
        ToolCallPart("toolu_01A09q90qw90lq917835lq9", "get_weather", '{"city":"Paris"}'),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(
        input_uncached=472, input_cache_read=2048, input_cache_write=100, output=89
    )
    assert UPSTREAM.usage_from_body(RECORDED_MESSAGE) == response.usage


def test_from_body_then_render_is_the_same_message() -> None:
    rendered = INBOUND.render(UPSTREAM.from_body(RECORDED_MESSAGE), model=RECORDED_MESSAGE["model"])
    expected = {**RECORDED_MESSAGE, "content": RECORDED_MESSAGE["content"][:4]}
    expected["usage"] = {k: v for k, v in expected["usage"].items() if k.endswith("tokens")}
    assert rendered == expected


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop_sequence"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("something_new", "stop"),
        (None, "stop"),
    ],
)
def test_from_body_stop_reasons(stop_reason: str | None, finish: str) -> None:
    data: dict[str, Any] = {"id": "m", "model": "x", "content": [], "stop_reason": stop_reason}
    data["stop_sequence"] = "Z"
    response = UPSTREAM.from_body(data)
    assert response.finish_reason == finish
    assert response.stop_sequence == "Z"
    assert response.usage == Usage()


def test_usage_mapping_never_double_counts_cache() -> None:
    usage = usage_from_anthropic(
        {
            "input_tokens": 50,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 200,
            "output_tokens": 30,
            "output_tokens_details": {"thinking_tokens": 12},
        }
    )
    assert usage == Usage(
        input_uncached=50, input_cache_read=1000, input_cache_write=200, output=30, reasoning=12
    )
    assert usage.input_total == 1250


def test_usage_mapping_edge_cases() -> None:
    assert usage_from_anthropic({}) == Usage()
    assert (
        usage_from_anthropic({"input_tokens": -5, "output_tokens": None, "cache_read_input_tokens": True})
        == Usage()
    )
    breakdown = {
        "input_tokens": 1,
        "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 4},
    }
    assert usage_from_anthropic(breakdown).input_cache_write == 14
    capped = usage_from_anthropic({"output_tokens": 5, "output_tokens_details": {"thinking_tokens": 9}})
    assert capped.reasoning == 5
    assert UPSTREAM.usage_from_body({"content": []}) is None


# ---- stream parsing -------------------------------------------------------------------------------


def _block_delta(index: int, delta: dict[str, Any]) -> tuple[str, Any]:
    return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}


def _json_delta(index: int, fragment: str) -> tuple[str, Any]:
    return _block_delta(index, {"type": "input_json_delta", "partial_json": fragment})


# A stream as Anthropic sends it (its JSON has spaces after separators), one (event, data) per event.
RECORDED_EVENTS: list[tuple[str, Any]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
                "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 472,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 2048,
                    "output_tokens": 2,
                },
            },
        },
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
    ),
    _block_delta(0, {"type": "thinking_delta", "thinking": "The user asks about "}),
    _block_delta(0, {"type": "thinking_delta", "thinking": "the weather."}),
    _block_delta(0, {"type": "signature_delta", "signature": SIG}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
    ),
    _block_delta(1, {"type": "text_delta", "text": "Okay, let"}),
    _block_delta(1, {"type": "text_delta", "text": "'s check."}),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    _json_delta(2, ""),
    _json_delta(2, '{"city": "San'),
    _json_delta(2, ' Francisco"}'),
    ("content_block_stop", {"type": "content_block_stop", "index": 2}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 3,
            "content_block": {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 3}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def _recorded_events() -> list[bytes]:
    return [f"event: {name}\ndata: {json.dumps(data)}".encode() for name, data in RECORDED_EVENTS]


def test_stream_parser_recorded_sequence() -> None:
    parser = UPSTREAM.stream_parser()
    events: list[StreamEvent] = []
    for raw in _recorded_events():
        assert not parser.done
        events.extend(parser.feed(raw))
    usage = Usage(input_uncached=472, input_cache_read=2048, output=89)
    assert events == [
        StreamStart("msg_014p7gG3wDgGV9EUtLvnow3U", "claude-sonnet-4-5-20250929"),
        ThinkingDelta(text="The user asks about "),
        ThinkingDelta(text="the weather."),
        ThinkingDelta(signature=SIG),
        TextDelta("Okay, let"),
        TextDelta("'s check."),
        ToolCallStart(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
        ToolCallDelta(0, '{"city": "San'),
        ToolCallDelta(0, ' Francisco"}'),
        ToolCallStart(1, "toolu_02", "get_time"),
        ToolCallDelta(1, "{}"),
        StreamFinish("tool_calls"),
        StreamUsage(usage),
    ]
    assert parser.done
    assert parser.usage == usage


def test_stream_parsed_then_rendered_keeps_the_block_structure() -> None:
    original = [
        (e.split(b"\n")[0][7:].decode(), orjson.loads(e.split(b"\n")[1][6:])) for e in _recorded_events()
    ]
    parser = UPSTREAM.stream_parser()
    renderer = INBOUND.stream_renderer(
        model="claude-sonnet-4-5-20250929", response_id="msg_x", created=0, include_usage=True
    )
    out = (
        b"".join(renderer.event(e) for raw in _recorded_events() for e in parser.feed(raw)) + renderer.close()
    )
    rendered = _sse(out)

    def structure(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[Any, ...]]:
        shape: list[tuple[Any, ...]] = []
        for name, data in events:
            if name == "content_block_start":
                shape.append((name, data["index"], data["content_block"]["type"]))
            elif name == "content_block_stop":
                shape.append((name, data["index"]))
            elif name in ("message_start", "message_stop"):
                shape.append((name,))
        return shape

    assert structure(rendered) == structure(original)
    before, after = _snapshot(original), _snapshot(rendered)
    assert after["content"] == before["content"]
    assert after["content"][2]["input"] == {"city": "San Francisco"}
    assert after["stop_reason"] == before["stop_reason"] == "tool_use"
    assert after["usage"]["output_tokens"] == 89
    assert after["usage"]["input_tokens"] == 472
    assert after["usage"]["cache_read_input_tokens"] == 2048


def test_stream_parser_error_event_ends_the_stream() -> None:
    parser = AnthropicStreamParser()
    parser.feed(_recorded_events()[0])
    assert parser.usage == Usage(input_uncached=472, input_cache_read=2048, output=2)
    events = parser.feed(
        b'event: error\ndata: {"type": "error", '
        b'"error": {"type": "overloaded_error", "message": "Overloaded"}}'
    )
    assert events == [StreamError("Overloaded", "overloaded_error")]
    assert parser.done
    assert parser.error == {"type": "overloaded_error", "message": "Overloaded"}


def test_stream_parser_ignores_noise() -> None:
    parser = AnthropicStreamParser()
    assert parser.usage is None
    for raw in (
        b": comment",
        b"event: ping\ndata: {}",
        b"data: not json",
        b"data: [1, 2]",
        b'data: {"type":"content_block_delta","index":0,"delta":{"type":"citations_delta"}}',
        b'data: {"type":"content_block_delta","index":9,'
        b'"delta":{"type":"input_json_delta","partial_json":"{}"}}',
        b'event: future_event\ndata: {"type":"future_event"}',
        b'data: {"type":"content_block_start","index":0,'
        b'"content_block":{"type":"server_tool_use","id":"s","name":"web_search"}}',
    ):
        assert parser.feed(raw) == []
    assert not parser.done


def test_stream_parser_odd_but_valid_shapes() -> None:
    parser = AnthropicStreamParser()
    events = parser.feed(
        b'data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":"Hi"}}'
    )
    events += parser.feed(
        b'data: {"type":"content_block_start","index":1,"content_block":'
        b'{"type":"tool_use","id":"t","name":"f","input":{"a":1}}}'
    )
    events += parser.feed(b'data: {"type":"content_block_stop","index":1}')
    events += parser.feed(
        b'data: {"type":"content_block_start","index":2,'
        b'"content_block":{"type":"redacted_thinking","data":"xx"}}'
    )
    events += parser.feed(
        b'data: {"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},'
        b'"usage":{"output_tokens":5,"input_tokens":9}}'
    )
    events += parser.feed(
        b'data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":6}}'
    )
    events += parser.feed(b'data: {"type":"message_stop"}')
    assert events == [
        TextDelta("Hi"),
        ToolCallStart(0, "t", "f"),
        ToolCallDelta(0, '{"a":1}'),
        ThinkingDelta(redacted="xx"),
        StreamFinish("length"),
        StreamUsage(Usage(input_uncached=9, output=6)),
    ]


# ---- pass-through ---------------------------------------------------------------------------------


def test_passthrough_body() -> None:
    body = {"model": "claude-public", "max_tokens": 5, "messages": [{"role": "user", "content": "é"}]}
    raw = orjson.dumps(body)
    assert passthrough_body(raw, body, "claude-public") is raw
    rewritten = orjson.loads(passthrough_body(raw, body, "claude-sonnet-4-5"))
    assert rewritten == {**body, "model": "claude-sonnet-4-5"}
    assert body["model"] == "claude-public"
