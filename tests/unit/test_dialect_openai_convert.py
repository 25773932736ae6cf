"""omnirelay.dialects.openai_chat_convert: Chat Completions <-> canonical, both faces, and streams."""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from omnirelay.core.chat import (
    ChatRequest,
    ChatResponse,
    FinishReason,
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
from omnirelay.core.usage import Usage, from_openai_usage
from omnirelay.dialects import registry
from omnirelay.dialects.base import InboundDialect, StreamParser, StreamRenderer, UpstreamDialect
from omnirelay.dialects.openai_chat_convert import (
    FINISH_FROM_OPENAI,
    OpenAIChatInbound,
    OpenAIChatUpstream,
    openai_usage,
)
from omnirelay.errors import InvalidRequest, UpstreamError
from tests.upstreams.openai import DEFAULT_API_KEY, OpenAISim

INBOUND = OpenAIChatInbound()
UPSTREAM = OpenAIChatUpstream()
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
JPEG = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8U"
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
TIME_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}},
}


def _parse(body: dict[str, Any], model: str = "claude-x") -> ChatRequest:
    return INBOUND.parse(body, model=model)


def _invalid(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        _parse(body)
    assert info.value.http_status == 400
    return info.value


def sse_payloads(raw: bytes) -> list[str]:
    """The data payloads of an SSE byte string, each event checked to be exactly ``data: ...``."""
    assert raw.endswith(b"\n\n")
    out = []
    for event in raw.split(b"\n\n")[:-1]:
        assert event.startswith(b"data: ") and b"\n" not in event
        out.append(event[6:].decode())
    return out


def render_stream(events: list[StreamEvent], *, include_usage: bool) -> bytes:
    renderer = INBOUND.stream_renderer(
        model="pub-model", response_id="chatcmpl-abc", created=1_700_000_000, include_usage=include_usage
    )
    return b"".join(renderer.event(e) for e in events) + renderer.close()


def test_the_classes_satisfy_the_dialect_protocols() -> None:
    inbound: InboundDialect = INBOUND
    upstream: UpstreamDialect = UPSTREAM
    renderer: StreamRenderer = INBOUND.stream_renderer(
        model="m", response_id="r", created=0, include_usage=False
    )
    parser: StreamParser = UPSTREAM.stream_parser()
    assert (inbound.name, upstream.name) == ("openai_chat", "openai_chat")
    assert renderer.close().endswith(b"data: [DONE]\n\n")
    assert parser.usage is None and not parser.done
    assert isinstance(registry.inbound("openai_chat"), OpenAIChatInbound)
    assert isinstance(registry.upstream("openai_chat"), OpenAIChatUpstream)


# ---- inbound: parse ---------------------------------------------------------------------------


def test_parse_system_developer_and_user_text() -> None:
    request = _parse(
        {
            "model": "public-name",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
                {"role": "user", "content": "Bonjour"},
                {"role": "system", "content": "Late rule."},
            ],
        },
        model="resolved",
    )
    assert request.model == "resolved"
    assert request.system == [TextPart("Be brief."), TextPart("Answer in French."), TextPart("Late rule.")]
    assert request.messages == [Message("user", [TextPart("Bonjour")])]
    assert request.stream is False and request.tools == [] and request.stop == []


def test_parse_images_keep_media_type_detail_and_url() -> None:
    request = _parse(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "What are these?"},
                        {
                            "type": "image_url",
                            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                        },
                        {"type": "image_url", "image_url": {"url": "https://example.com/cat.webp"}},
                        {"type": "image_url", "image_url": f"data:;base64,{JPEG}"},
                        {"type": "image_url", "image_url": {"url": f"data:IMAGE/GIF;charset=x;base64,{PNG}"}},
                    ],
                }
            ]
        }
    )
    assert request.messages[0].parts == [
        TextPart("What are these?"),
        ImagePart(media_type="image/png", data=PNG, detail="high"),
        ImagePart(url="https://example.com/cat.webp"),
        ImagePart(media_type="image/jpeg", data=JPEG),  # no type given: sniffed from the bytes
        ImagePart(media_type="image/gif", data=PNG),
    ]


def test_parse_assistant_reasoning_text_and_tool_calls_then_tool_results() -> None:
    request = _parse(
        {
            "messages": [
                {"role": "user", "content": "weather in Paris and time?"},
                {
                    "role": "assistant",
                    "reasoning_content": "Two tools are needed.",
                    "content": "Let me check.",
                    "tool_calls": [
                        {
                            "id": "call_a",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":1}'},
                        },
                        {
                            "id": "call_b",
                            "type": "function",
                            "function": {"name": "get_time", "arguments": {}},
                        },
                    ],
                },
                {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
                {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "noon"}]},
                {"role": "user", "content": "thanks"},
                {"role": "assistant", "content": None},
                {"role": "assistant", "content": "You're welcome."},
            ]
        }
    )
    assert request.messages == [
        Message("user", [TextPart("weather in Paris and time?")]),
        Message(
            "assistant",
            [
                ThinkingPart(text="Two tools are needed."),
                TextPart("Let me check."),
                ToolCallPart("call_a", "get_weather", '{"city":"Paris","days":1}'),
                ToolCallPart("call_b", "get_time", "{}"),
            ],
        ),
        Message(
            "user",
            [
                ToolResultPart("call_a", [TextPart("sunny")], name="get_weather"),
                ToolResultPart("call_b", [TextPart("noon")], name="get_time"),
                TextPart("thanks"),
            ],
        ),
        Message("assistant", [TextPart("You're welcome.")]),
    ]
    thinking = request.messages[1].parts[0]
    assert isinstance(thinking, ThinkingPart) and thinking.signature is None


def test_parse_settings() -> None:
    request = _parse(
        {
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": {"type": "function", "function": {"name": "get_time"}},
            "parallel_tool_calls": False,
            "max_tokens": 50,
            "max_completion_tokens": 70,
            "temperature": 0,
            "top_p": 0.5,
            "stop": "END",
            "seed": 7,
            "n": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": {"type": "object"}, "strict": True},
            },
            "reasoning_effort": "medium",
            "user": "u-1",
            "metadata": {"trace": "t1"},
            "frequency_penalty": 0.1,
        }
    )
    assert request.tools == [
        ToolDef("get_weather", "Weather for a city", WEATHER_TOOL["function"]["parameters"]),
        ToolDef("get_time", None, {"type": "object", "properties": {}}),
    ]
    assert request.tool_choice == ToolChoice("tool", "get_time")
    assert request.parallel_tool_calls is False
    assert request.max_tokens == 70  # max_completion_tokens wins
    assert (request.temperature, request.top_p, request.seed, request.n) == (0.0, 0.5, 7, 1)
    assert request.stop == ["END"]
    assert request.stream is True
    assert request.response_format == {
        "type": "json_schema",
        "name": "answer",
        "schema": {"type": "object"},
        "strict": True,
    }
    assert request.reasoning_effort == "medium" and request.reasoning_enabled is None
    assert (request.user, request.metadata) == ("u-1", {"trace": "t1"})


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("none", ToolChoice("none")),
        ("auto", ToolChoice("auto")),
        ("required", ToolChoice("required")),
        ({"type": "function", "function": {"name": "f"}}, ToolChoice("tool", "f")),
        (None, None),
    ],
)
def test_parse_tool_choice(choice: Any, expected: ToolChoice | None) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": choice}
    assert _parse(body).tool_choice == expected


@pytest.mark.parametrize(
    ("effort", "expected", "enabled"),
    [
        ("none", None, False),
        ("minimal", "low", None),
        ("low", "low", None),
        ("medium", "medium", None),
        ("high", "high", None),
        ("xhigh", "high", None),
    ],
)
def test_parse_reasoning_effort(effort: str, expected: str | None, enabled: bool | None) -> None:
    request = _parse({"messages": [{"role": "user", "content": "x"}], "reasoning_effort": effort})
    assert (request.reasoning_effort, request.reasoning_enabled) == (expected, enabled)


def test_parse_response_format_variants_and_thinking_extension() -> None:
    base: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}]}
    assert _parse({**base, "response_format": {"type": "text"}}).response_format is None
    assert _parse({**base, "response_format": {"type": "json_object"}}).response_format == {
        "type": "json_object"
    }
    assert _parse({**base, "stop": ["a", "b"]}).stop == ["a", "b"]
    on = _parse({**base, "thinking": {"type": "enabled", "budget_tokens": 2048}})
    assert (on.reasoning_enabled, on.reasoning_budget) == (True, 2048)
    assert _parse({**base, "thinking": {"type": "disabled"}}).reasoning_enabled is False


USER = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        ({"messages": USER, "n": 2}, "n", "n=1"),
        ({"messages": USER, "logprobs": True}, "logprobs", "log probabilities"),
        ({"messages": USER, "modalities": ["text", "audio"]}, "modalities", "Audio"),
        ({"messages": USER, "functions": [{"name": "f"}]}, "functions", "tools"),
        ({"messages": []}, "messages", "non-empty"),
        ({"messages": "hi"}, "messages", "non-empty"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "robot"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role", "legacy"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id", "tool_call_id"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0]",
            "input_audio content cannot be translated",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": {}}]}]},
            "messages[0].content[0]",
            "file content",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
                ]
            },
            "messages[0].content[0].image_url.url",
            "http(s) URL",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "base64 data URL",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0].image_url.url",
            "not valid base64",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0]",
            "text",
        ),
        ({"messages": USER, "tools": [{"type": "custom", "custom": {}}]}, "tools[0].type", "function tools"),
        (
            {"messages": USER, "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
            "name",
        ),
        ({"messages": USER, "tool_choice": "sometimes"}, "tool_choice", "tool_choice"),
        ({"messages": USER, "reasoning_effort": "max"}, "reasoning_effort", "one of"),
        ({"messages": USER, "response_format": {"type": "yaml"}}, "response_format.type", "json_schema"),
        (
            {"messages": USER, "response_format": {"type": "json_schema", "json_schema": {}}},
            "response_format.json_schema.name",
            "name",
        ),
        ({"messages": USER, "stop": [1]}, "stop", "strings"),
        ({"messages": USER, "temperature": "hot"}, "temperature", "number"),
        ({"messages": USER, "seed": 1.5}, "seed", "integer"),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}
                ]
            },
            "messages[0].tool_calls[0].id",
            "id",
        ),
    ],
)
def test_parse_refusals(body: dict[str, Any], param: str, fragment: str) -> None:
    exc = _invalid(body)
    assert exc.param == param
    assert fragment in exc.message


# ---- inbound: render ---------------------------------------------------------------------------


def _response(parts: list[Any], finish: FinishReason = "stop", usage: Usage | None = None) -> ChatResponse:
    return ChatResponse(
        id="chatcmpl-1",
        model="upstream-model",
        parts=parts,
        finish_reason=finish,
        usage=usage or Usage(input_uncached=10, output=5),
        created=1_700_000_123,
    )


def test_render_text_thinking_and_tool_calls() -> None:
    response = _response(
        [
            ThinkingPart(text="Let me think.", signature="sig"),
            TextPart("Checking "),
            TextPart("now."),
            ToolCallPart("toolu_1", "get_weather", '{"city":"Paris"}'),
            ToolCallPart("toolu_2", "get_time", "{}"),
        ],
        finish="tool_calls",
    )
    rendered = INBOUND.render(response, model="pub-model")
    ChatCompletion.model_validate(rendered)
    assert rendered["id"] == "chatcmpl-1" and rendered["model"] == "pub-model"
    assert rendered["object"] == "chat.completion" and rendered["created"] == 1_700_000_123
    choice = rendered["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Checking now.",
        "reasoning_content": "Let me think.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
        ],
        "refusal": None,
    }


def test_render_content_is_null_only_for_a_pure_tool_call_turn() -> None:
    calls = INBOUND.render(_response([ToolCallPart("c", "f", "{}")], finish="stop"), model="m")
    assert calls["choices"][0]["message"]["content"] is None
    # Gemini ends tool-calling turns with a plain stop; OpenAI clients look for tool_calls.
    assert calls["choices"][0]["finish_reason"] == "tool_calls"
    empty = INBOUND.render(_response([]), model="m")
    assert empty["choices"][0]["message"]["content"] == ""
    assert "reasoning_content" not in empty["choices"][0]["message"]


@pytest.mark.parametrize(
    ("canonical", "openai_reason"),
    [
        ("stop", "stop"),
        ("stop_sequence", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "stop"),
    ],
)
def test_render_finish_reason_table(canonical: FinishReason, openai_reason: str) -> None:
    rendered = INBOUND.render(_response([TextPart("x")], finish=canonical), model="m")
    assert rendered["choices"][0]["finish_reason"] == openai_reason


def test_render_usage_counts_every_input_token_once() -> None:
    usage = Usage(input_uncached=100, input_cache_read=900, input_cache_write=50, output=40, reasoning=30)
    rendered = INBOUND.render(_response([TextPart("x")], usage=usage), model="m")
    assert rendered["usage"] == {
        "prompt_tokens": 1050,
        "completion_tokens": 40,
        "total_tokens": 1090,
        "prompt_tokens_details": {"cached_tokens": 900},
        "completion_tokens_details": {"reasoning_tokens": 30},
    }
    # Read back, the cache reads are not counted twice (cache writes fold into uncached input).
    back = from_openai_usage(rendered["usage"])
    assert (back.input_uncached, back.input_cache_read, back.output, back.reasoning) == (150, 900, 40, 30)
    assert back.input_total == usage.input_total


# ---- inbound: stream renderer ------------------------------------------------------------------

STREAM_EVENTS: list[StreamEvent] = [
    StreamStart(id="msg_1", model="claude"),
    ThinkingDelta(text="Hmm, "),
    ThinkingDelta(text="two tools."),
    ThinkingDelta(signature="sig-abc"),
    TextDelta("Checking"),
    TextDelta(" both."),
    ToolCallStart(index=0, id="toolu_a", name="get_weather"),
    ToolCallDelta(index=0, arguments='{"ci'),
    ToolCallDelta(index=0, arguments='ty": "Paris", '),
    ToolCallStart(index=1, id="toolu_b", name="get_time"),
    ToolCallDelta(index=1, arguments="{"),
    ToolCallDelta(index=0, arguments='"days": 2}'),  # a late fragment of the first call
    ToolCallDelta(index=1, arguments="}"),
    ToolCallDelta(index=1, arguments=""),
    StreamUsage(Usage(input_uncached=20, input_cache_read=5, output=12, reasoning=4)),
    StreamFinish("tool_calls"),
]


def _accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client rebuilds from chunks: content, reasoning, tool calls by index, finish, usage."""
    out: dict[str, Any] = {"content": "", "reasoning": "", "calls": {}, "finish": None, "usage": None}
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            out["content"] += delta.get("content") or ""
            out["reasoning"] += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = out["calls"].setdefault(call["index"], {"id": None, "name": "", "arguments": ""})
                if "id" in call:
                    assert slot["id"] is None, "a call's id is sent once"
                    slot["id"] = call["id"]
                    slot["name"] = call["function"]["name"]
                slot["arguments"] += call["function"].get("arguments") or ""
            if choice["finish_reason"]:
                out["finish"] = choice["finish_reason"]
    return out


def test_stream_renderer_with_usage() -> None:
    raw = render_stream(STREAM_EVENTS, include_usage=True)
    payloads = sse_payloads(raw)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    first = chunks[0]
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all(c["id"] == "chatcmpl-abc" and c["model"] == "pub-model" for c in chunks)
    assert all(c["object"] == "chat.completion.chunk" and c["created"] == 1_700_000_000 for c in chunks)
    assert all("usage" in c for c in chunks)
    assert all(c["usage"] is None for c in chunks[:-1])
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 12,
        "total_tokens": 37,
        "prompt_tokens_details": {"cached_tokens": 5},
        "completion_tokens_details": {"reasoning_tokens": 4},
    }
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    state = _accumulate(chunks)
    assert state["content"] == "Checking both."
    assert state["reasoning"] == "Hmm, two tools."
    assert state["calls"] == {
        0: {"id": "toolu_a", "name": "get_weather", "arguments": '{"city": "Paris", "days": 2}'},
        1: {"id": "toolu_b", "name": "get_time", "arguments": "{}"},
    }


def test_stream_renderer_without_usage_has_no_usage_chunk_or_field() -> None:
    payloads = sse_payloads(render_stream(STREAM_EVENTS, include_usage=False))
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all("usage" not in c and c["choices"] for c in chunks)
    assert _accumulate(chunks)["finish"] == "tool_calls"


def test_stream_renderer_tool_indices_are_dense_in_start_order() -> None:
    events: list[StreamEvent] = [
        ToolCallStart(index=3, id="a", name="f"),
        ToolCallDelta(index=3, arguments="{}"),
        ToolCallStart(index=7, id="b", name="g"),
        ToolCallDelta(index=7, arguments="{}"),
        StreamFinish("stop"),
    ]
    chunks = [json.loads(p) for p in sse_payloads(render_stream(events, include_usage=False))[:-1]]
    state = _accumulate(chunks)
    assert sorted(state["calls"]) == [0, 1]
    assert state["finish"] == "tool_calls"


def test_stream_renderer_close_adds_a_finish_when_none_came_and_error_shape() -> None:
    renderer = INBOUND.stream_renderer(model="m", response_id="r", created=1, include_usage=False)
    body = renderer.event(TextDelta("partial")) + renderer.close()
    chunks = [json.loads(p) for p in sse_payloads(body)[:-1]]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert renderer.close() == b""

    renderer = INBOUND.stream_renderer(model="m", response_id="r", created=1, include_usage=True)
    out = renderer.event(TextDelta("a")) + renderer.error("upstream went away", "upstream_error")
    error = {"message": "upstream went away", "type": "upstream_error", "param": None, "code": None}
    assert out.endswith(b"data: " + orjson.dumps({"error": error}) + b"\n\n")
    assert renderer.event(TextDelta("ignored")) == b""
    assert renderer.close() == b"data: [DONE]\n\n"
    assert renderer.close() == b""
    streamed = INBOUND.stream_renderer(model="m", response_id="r", created=1, include_usage=False)
    assert sse_payloads(streamed.event(StreamError("boom")))[0].startswith('{"error":{"message":"boom"')


@contextlib.asynccontextmanager
async def replay_server(body: bytes, content_type: str = "text/event-stream") -> AsyncIterator[str]:
    """A loopback server answering every request with ``body``; yields an SDK ``base_url``."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=body, headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def sdk_client(
    body: bytes, content_type: str = "text/event-stream"
) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK reading ``body`` as the gateway's answer."""
    async with (
        replay_server(body, content_type) as base_url,
        openai.AsyncOpenAI(api_key="sk-test", base_url=base_url, max_retries=0) as client,
    ):
        yield client


async def test_stream_renderer_output_through_the_openai_sdk_stream_helper() -> None:
    raw = render_stream(STREAM_EVENTS, include_usage=True)
    async with (
        sdk_client(raw) as client,
        client.chat.completions.stream(
            model="pub-model", messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        final = await stream.get_final_completion()
    message = final.choices[0].message
    assert message.content == "Checking both."
    assert message.tool_calls is not None
    calls = [
        (c.id, c.function.name, c.function.arguments) for c in message.tool_calls if c.type == "function"
    ]
    assert calls == [
        ("toolu_a", "get_weather", '{"city": "Paris", "days": 2}'),
        ("toolu_b", "get_time", "{}"),
    ]
    assert final.choices[0].finish_reason == "tool_calls"
    assert final.usage is not None and final.usage.prompt_tokens == 25


async def test_render_through_the_openai_sdk() -> None:
    rendered = INBOUND.render(_response([TextPart("hello")]), model="pub-model")
    async with sdk_client(orjson.dumps(rendered), "application/json") as client:
        completion = await client.chat.completions.create(
            model="pub-model", messages=[{"role": "user", "content": "x"}]
        )
    assert completion.choices[0].message.content == "hello"
    assert completion.usage is not None and completion.usage.total_tokens == 15


# ---- upstream: to_body -------------------------------------------------------------------------


def _request(**fields: Any) -> ChatRequest:
    fields.setdefault("messages", [Message("user", [TextPart("hi")])])
    return ChatRequest(model="pub", **fields)


def test_to_body_messages() -> None:
    request = _request(
        system=[TextPart("Be brief."), TextPart("Use metric units.")],
        messages=[
            Message(
                "user",
                [
                    TextPart("Look:"),
                    ImagePart(media_type="image/png", data=PNG, detail="low"),
                    ImagePart(url="https://x/y.jpg"),
                ],
            ),
            Message(
                "assistant",
                [
                    ThinkingPart(text="secret", signature="sig"),
                    ThinkingPart(redacted="blob"),
                    TextPart("Calling."),
                    ToolCallPart("call_1", "get_weather", '{"city":"Oslo"}'),
                    ToolCallPart("call_2", "get_time", ""),
                ],
            ),
            Message(
                "user",
                [
                    ToolResultPart("call_1", [TextPart("cold")], name="get_weather"),
                    ToolResultPart("call_2", [ImagePart(media_type="image/jpeg", data=JPEG)], is_error=True),
                    TextPart("And tomorrow?"),
                ],
            ),
            Message("assistant", [ThinkingPart(text="only thinking")]),
            Message("assistant", [ToolCallPart("call_3", "get_time", "{}")]),
        ],
    )
    body = UPSTREAM.to_body(request, upstream_model="gpt-4o")
    assert body["model"] == "gpt-4o"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://x/y.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Calling.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "cold"},
        {
            "role": "tool",
            "tool_call_id": "call_2",
            "content": "(the result is 1 image(s), sent in the next user message)",
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}},
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_3", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
            ],
        },
    ]
    assert "reasoning_content" not in json.dumps(body)
    assert "stream" not in body and "stream_options" not in body


def test_to_body_settings() -> None:
    request = _request(
        tools=[ToolDef("get_time", None, {"type": "object"}), ToolDef("f", "does f", {"type": "object"})],
        tool_choice=ToolChoice("tool", "f"),
        parallel_tool_calls=False,
        max_tokens=99,
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        stop=["END"],
        seed=3,
        stream=True,
        response_format={"type": "json_schema", "name": "a", "schema": {"type": "object"}, "strict": True},
        reasoning_effort="high",
        metadata={"x": "y"},
        user="u",
        n=1,
    )
    body = UPSTREAM.to_body(request, upstream_model="deepseek-chat")
    assert body == {
        "model": "deepseek-chat",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
            {
                "type": "function",
                "function": {"name": "f", "description": "does f", "parameters": {"type": "object"}},
            },
        ],
        "parallel_tool_calls": False,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "max_tokens": 99,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 3,
        "stop": ["END"],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}, "strict": True},
        },
        "reasoning_effort": "high",
        "user": "u",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("model", "key"),
    [("gpt-4o", "max_tokens"), ("o3-mini", "max_completion_tokens"), ("gpt-5", "max_completion_tokens")],
)
def test_to_body_token_limit_field(model: str, key: str) -> None:
    body = UPSTREAM.to_body(_request(max_tokens=10), upstream_model=model)
    other = "max_tokens" if key == "max_completion_tokens" else "max_completion_tokens"
    assert body[key] == 10 and other not in body


def test_to_body_drops_parallel_without_tools_and_effort_when_disabled() -> None:
    body = UPSTREAM.to_body(
        _request(
            parallel_tool_calls=True,
            reasoning_effort="low",
            reasoning_enabled=False,
            response_format={"type": "json_object"},
            tool_choice=ToolChoice("none"),
        ),
        upstream_model="m",
    )
    assert "parallel_tool_calls" not in body and "reasoning_effort" not in body
    assert body["response_format"] == {"type": "json_object"}
    assert body["tool_choice"] == "none"


ROUND_TRIP_BODY: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [
        {"role": "system", "content": "sys"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "auto"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
                },
                {"id": "c2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "warm"},
        {"role": "tool", "tool_call_id": "c2", "content": "9am"},
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "bye"},
    ],
    "tools": [WEATHER_TOOL, TIME_TOOL],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "max_tokens": 100,
    "temperature": 0.5,
    "top_p": 1.0,
    "seed": 1,
    "stop": ["\n\n"],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": False},
    },
    "reasoning_effort": "low",
    "user": "someone",
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_round_trip_client_body_through_canonical_to_upstream_body() -> None:
    request = _parse(copy.deepcopy(ROUND_TRIP_BODY), model="pub")
    body = UPSTREAM.to_body(request, upstream_model="gpt-4o")
    assert body == ROUND_TRIP_BODY
    assert UPSTREAM.to_body(_parse(body, model="pub"), upstream_model="gpt-4o") == body


# ---- upstream: from_body / usage_from_body -----------------------------------------------------

RECORDED_OPENAI_REPLY: dict[str, Any] = {
    "id": "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG",
    "object": "chat.completion",
    "created": 1741570283,
    "model": "gpt-4o-2024-08-06",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_12345xyz",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris","days":3}'},
                    },
                    {
                        "id": "call_67890abc",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    },
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1117,
        "completion_tokens": 46,
        "total_tokens": 1163,
        "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}
RECORDED_DEEPSEEK_REPLY: dict[str, Any] = {
    "id": "930c60df-bf64-41c9-a88e-3ec75f81e00e",
    "object": "chat.completion",
    "created": 1737536900,
    "model": "deepseek-reasoner",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "9.11 is smaller.",
                "reasoning_content": "Compare the decimals: 0.11 < 0.9.",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {
        "prompt_tokens": 20,
        "completion_tokens": 200,
        "total_tokens": 220,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 180},
        "prompt_cache_hit_tokens": 16,
        "prompt_cache_miss_tokens": 4,
    },
    "system_fingerprint": "fp_1c5d8833bc",
}


def test_from_body_recorded_openai_tool_calls() -> None:
    response = UPSTREAM.from_body(RECORDED_OPENAI_REPLY)
    assert response.id == "chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG"
    assert response.model == "gpt-4o-2024-08-06" and response.created == 1741570283
    assert response.parts == [
        ToolCallPart("call_12345xyz", "get_weather", '{"city":"Paris","days":3}'),
        ToolCallPart("call_67890abc", "get_time", "{}"),
    ]
    assert response.finish_reason == "tool_calls"
    assert response.usage == Usage(input_uncached=93, input_cache_read=1024, output=46)
    assert UPSTREAM.usage_from_body(RECORDED_OPENAI_REPLY) == response.usage


def test_from_body_recorded_deepseek_reasoning() -> None:
    response = UPSTREAM.from_body(RECORDED_DEEPSEEK_REPLY)
    assert response.parts == [
        ThinkingPart(text="Compare the decimals: 0.11 < 0.9."),
        TextPart("9.11 is smaller."),
    ]
    assert response.usage == Usage(input_uncached=4, input_cache_read=16, output=200, reasoning=180)
    rendered = INBOUND.render(response, model="deepseek-reasoner")
    assert rendered["choices"][0]["message"]["reasoning_content"] == "Compare the decimals: 0.11 < 0.9."
    assert rendered["usage"]["prompt_tokens"] == 20  # the same as the upstream said, not 36


def test_from_body_edge_cases() -> None:
    refusal = {"choices": [{"message": {"content": None, "refusal": "I can't."}, "finish_reason": "stop"}]}
    response = UPSTREAM.from_body(refusal)
    assert response.parts == [TextPart("I can't.")]
    assert response.usage == Usage() and UPSTREAM.usage_from_body(refusal) is None
    listed = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}], "reasoning": "r"}}]}
    assert UPSTREAM.from_body(listed).parts == [ThinkingPart(text="r"), TextPart("a")]
    gemini_style = {
        "choices": [
            {
                "message": {"tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}]},
                "finish_reason": "stop",
            }
        ]
    }
    converted = UPSTREAM.from_body(gemini_style)
    assert converted.parts == [ToolCallPart("call_0", "f", '{"a":1}')]
    assert converted.finish_reason == "tool_calls"
    with pytest.raises(UpstreamError):
        UPSTREAM.from_body({"choices": []})
    with pytest.raises(UpstreamError):
        UPSTREAM.from_body({"error": {"message": "x"}})


@pytest.mark.parametrize(
    ("reason", "canonical"), [*FINISH_FROM_OPENAI.items(), ("something_new", "stop"), (None, "stop")]
)
def test_from_body_finish_reason_table(reason: str | None, canonical: FinishReason) -> None:
    data = {"choices": [{"message": {"content": "x"}, "finish_reason": reason}]}
    assert UPSTREAM.from_body(data).finish_reason == canonical


# ---- upstream: stream parser -------------------------------------------------------------------


def _chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(data)


RECORDED_TOOL_STREAM = [
    _chunk({"role": "assistant", "content": None, "refusal": None}, usage=None),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        },
        usage=None,
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city'}}]}, usage=None),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '":"Paris"}'}}]}, usage=None),
    _chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": ""},
                }
            ]
        },
        usage=None,
    ),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, usage=None),
    _chunk({}, "tool_calls", usage=None),
    _chunk(
        None,
        usage={
            "prompt_tokens": 80,
            "completion_tokens": 30,
            "total_tokens": 110,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    ),
    b"data: [DONE]",
]


def _feed(events: list[bytes]) -> tuple[list[StreamEvent], Any]:
    parser = UPSTREAM.stream_parser()
    out: list[StreamEvent] = []
    for event in events:
        out.extend(parser.feed(event))
    return out, parser


def test_stream_parser_recorded_tool_calls() -> None:
    events, parser = _feed(RECORDED_TOOL_STREAM)
    usage = Usage(input_uncached=16, input_cache_read=64, output=30)
    assert events == [
        StreamStart("chatcmpl-1", "gpt-4o"),
        ToolCallStart(0, "call_a", "get_weather"),
        ToolCallDelta(0, '{"city'),
        ToolCallDelta(0, '":"Paris"}'),
        ToolCallStart(1, "call_b", "get_time"),
        ToolCallDelta(1, "{}"),
        StreamFinish("tool_calls"),
        StreamUsage(usage),
    ]
    assert parser.done and parser.usage == usage


def test_stream_parser_reasoning_text_and_vendor_quirks() -> None:
    events, parser = _feed(
        [
            # Azure: a first chunk with no id and no choices, carrying prompt filter results
            b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}',
            b": keep-alive comment",
            _chunk({"role": "assistant", "content": ""}),
            _chunk({"content": None, "reasoning_content": "think"}),
            _chunk({"reasoning": " more"}),
            _chunk({"content": "Hi"}),
            # a vendor reusing index 0 for a second call, told apart by its new id
            _chunk({"tool_calls": [{"index": 0, "id": "x1", "function": {"name": "f", "arguments": "{}"}}]}),
            _chunk(
                {"tool_calls": [{"index": 0, "id": "x2", "function": {"name": "g", "arguments": '{"a":'}}]}
            ),
            _chunk({"tool_calls": [{"index": 0, "id": "x2", "function": {"arguments": "1}"}}]}),
            # DeepSeek: usage on the last chunk with the finish reason, and a plain stop after calls
            _chunk(
                {}, "stop", usage={"prompt_tokens": 10, "completion_tokens": 4, "prompt_cache_hit_tokens": 6}
            ),
            b"data: {not json",
        ]
    )
    assert events == [
        StreamStart("chatcmpl-1", "gpt-4o"),
        ThinkingDelta(text="think"),
        ThinkingDelta(text=" more"),
        TextDelta("Hi"),
        ToolCallStart(0, "x1", "f"),
        ToolCallDelta(0, "{}"),
        ToolCallStart(1, "x2", "g"),
        ToolCallDelta(1, '{"a":'),
        ToolCallDelta(1, "1}"),
        StreamFinish("tool_calls"),
        StreamUsage(Usage(input_uncached=4, input_cache_read=6, output=4)),
    ]
    assert not parser.done


def test_stream_parser_error_event() -> None:
    events, _ = _feed([b'data: {"error":{"message":"overloaded","type":"server_error"}}'])
    assert events == [StreamError("overloaded", "server_error")]


def test_parsed_upstream_stream_renders_back_byte_for_byte_equivalent() -> None:
    """An OpenAI stream parsed to canonical events and rendered as Chat Completions again keeps every
    call, index and argument fragment."""
    events, _ = _feed(RECORDED_TOOL_STREAM)
    chunks = [json.loads(p) for p in sse_payloads(render_stream(events, include_usage=True))[:-1]]
    state = _accumulate(chunks)
    assert state["calls"] == {
        0: {"id": "call_a", "name": "get_weather", "arguments": '{"city":"Paris"}'},
        1: {"id": "call_b", "name": "get_time", "arguments": "{}"},
    }
    assert state["usage"]["prompt_tokens"] == 80 and state["finish"] == "tool_calls"


def test_openai_usage_helper_is_total_and_consistent() -> None:
    usage = Usage(input_uncached=1, input_cache_read=2, input_cache_write=3, output=4, reasoning=1)
    rendered = openai_usage(usage)
    assert rendered["prompt_tokens"] == usage.input_total == 6
    assert rendered["total_tokens"] == 10


# ---- against the OpenAI simulator --------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[OpenAISim]:
    async with OpenAISim() as server:
        yield server


async def _post(sim: OpenAISim, body: dict[str, Any]) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    url = f"{sim.base_url}/chat/completions"
    async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as resp:
        return resp.status, await resp.read()


def _sse_events(raw: bytes) -> list[bytes]:
    return [e for e in raw.replace(b"\r\n", b"\n").split(b"\n\n") if e]


async def test_translated_call_against_the_simulator(sim: OpenAISim) -> None:
    request = _request(
        messages=[Message("user", [TextPart("call all tools please")])],
        tools=[
            ToolDef("get_weather", None, WEATHER_TOOL["function"]["parameters"]),
            ToolDef("get_time", None, {"type": "object"}),
        ],
    )
    status, raw = await _post(sim, UPSTREAM.to_body(request, upstream_model="gpt-4o-mini"))
    assert status == 200
    response = UPSTREAM.from_body(orjson.loads(raw))
    calls = [p for p in response.parts if isinstance(p, ToolCallPart)]
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].arguments) == {"city": "placeholder", "days": 0}
    assert response.finish_reason == "tool_calls" and response.usage.output > 0


async def test_translated_stream_against_the_simulator(sim: OpenAISim) -> None:
    """Chat Completions client -> canonical -> OpenAI-compatible upstream (the simulator) -> parser
    -> renderer -> the client's view: nothing lost, argument fragments included."""
    client_body = {
        "model": "pub",
        "messages": [{"role": "user", "content": "call all tools now"}],
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "stream": True,
    }
    request = _parse(client_body)
    upstream_body = UPSTREAM.to_body(request, upstream_model="sim-reasoner")
    assert upstream_body["stream_options"] == {"include_usage": True}
    status, raw = await _post(sim, upstream_body)
    assert status == 200
    events, parser = _feed(_sse_events(raw))
    assert parser.done and parser.usage is not None
    fragments = [e for e in events if isinstance(e, ToolCallDelta) and e.index == 0]
    assert len(fragments) > 2  # the simulator cuts arguments into 8-character pieces
    rendered = render_stream(events, include_usage=False)
    chunks = [json.loads(p) for p in sse_payloads(rendered)[:-1]]
    state = _accumulate(chunks)
    assert state["reasoning"].startswith("Thinking about the request")
    assert json.loads(state["calls"][0]["arguments"]) == {"city": "placeholder", "days": 0}
    assert state["calls"][1]["name"] == "get_time" and state["finish"] == "tool_calls"


async def test_simulator_reply_with_images_and_json_schema(sim: OpenAISim) -> None:
    body = {
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                ],
            }
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "d",
                "schema": {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]},
            },
        },
        "max_tokens": 50,
    }
    request = _parse(body)
    status, raw = await _post(sim, UPSTREAM.to_body(request, upstream_model="gpt-4o"))
    assert status == 200
    sent = sim.chat_requests[-1].json
    assert sent["messages"][0]["content"][1]["image_url"]["url"] == f"data:image/png;base64,{PNG}"
    response = UPSTREAM.from_body(orjson.loads(raw))
    assert json.loads(response.parts[0].text) == {"x": "placeholder"}  # type: ignore[union-attr]
