"""AnthropicAdapter and VertexAnthropicAdapter against the Anthropic simulator: calls, streams, headers,
error classification, and the dialect's translated bodies accepted by a strict upstream."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from omnirelay.core.chat import (
    ChatRequest,
    Message,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamUsage,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolDef,
    ToolResultPart,
)
from omnirelay.core.usage import Usage
from omnirelay.dialects.anthropic import AnthropicStreamParser, AnthropicUpstream, passthrough_body
from omnirelay.providers.anthropic.adapter import ANTHROPIC_VERSION, AnthropicAdapter
from omnirelay.providers.anthropic.errors import classify_status
from omnirelay.providers.anthropic.vertex import VERTEX_ANTHROPIC_VERSION, VertexAnthropicAdapter
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.openai_compat.adapter import iter_sse_events
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.anthropic import DEFAULT_API_KEY, DEFAULT_VERTEX_TOKEN, AnthropicSim, sign_thinking

MODEL = "sim-claude"
UPSTREAM = AnthropicUpstream()
BODY: Any = {"model": MODEL, "max_tokens": 50, "messages": [{"role": "user", "content": "hi there"}]}


def _raw(body: Any = BODY, **extra: Any) -> bytes:
    return orjson.dumps({**body, **extra})


@pytest.fixture
async def sim() -> AsyncIterator[AnthropicSim]:
    async with AnthropicSim() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def adapter(sim: AnthropicSim, http: aiohttp.ClientSession) -> AnthropicAdapter:
    channel = ChannelConfig(
        name="claude", provider="anthropic", base_url=sim.base_url, api_key=DEFAULT_API_KEY
    )
    return AnthropicAdapter(channel, http)


@pytest.fixture
def vertex(sim: AnthropicSim, http: aiohttp.ClientSession) -> VertexAnthropicAdapter:
    channel = ChannelConfig(
        name="claude-vertex",
        provider="vertex_anthropic",
        base_url=sim.vertex_base_url("proj-1", "us-east5"),
        api_key=DEFAULT_VERTEX_TOKEN,
    )
    return VertexAnthropicAdapter(channel, http)


async def _stream_events(resp: aiohttp.ClientResponse) -> tuple[list[StreamEvent], AnthropicStreamParser]:
    parser = UPSTREAM.stream_parser()
    events: list[StreamEvent] = []
    try:
        async for group in iter_sse_events(resp):
            for raw in group:
                events.extend(parser.feed(raw))
    finally:
        resp.release()
    return events, parser


def test_registry_and_class_attributes() -> None:
    assert adapter_class("anthropic") is AnthropicAdapter
    assert adapter_class("vertex_anthropic") is VertexAnthropicAdapter
    for cls in (AnthropicAdapter, VertexAnthropicAdapter):
        assert cls.capabilities == frozenset({Capability.CHAT})
        assert cls.dialect == "anthropic"
    assert (AnthropicAdapter.id, VertexAnthropicAdapter.id) == ("anthropic", "vertex_anthropic")


# ---- Anthropic ------------------------------------------------------------------------------------


async def test_chat(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    reply = await adapter.chat(_raw(), DEFAULT_API_KEY, 5.0, upstream_model=MODEL)
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    response = UPSTREAM.from_body(orjson.loads(reply.body))
    assert response.parts == [TextPart("Echo: hi there")]
    assert response.finish_reason == "stop"
    recorded = sim.message_requests[-1]
    assert recorded.path == "/v1/messages"
    assert recorded.body == _raw()  # sent as given
    assert recorded.headers["x-api-key"] == DEFAULT_API_KEY
    assert recorded.headers["anthropic-version"] == ANTHROPIC_VERSION == "2023-06-01"
    assert recorded.headers["content-type"] == "application/json"
    assert "anthropic-beta" not in recorded.headers
    assert "authorization" not in recorded.headers


async def test_client_headers_are_forwarded(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    headers = {
        "Anthropic-Version": "2024-01-01",
        "ANTHROPIC-BETA": "prompt-caching-2024-07-31",
        "x-other": "no",
    }
    await adapter.chat(_raw(), DEFAULT_API_KEY, 5.0, upstream_model=MODEL, headers=headers)
    recorded = sim.message_requests[-1].headers
    assert recorded["anthropic-version"] == "2024-01-01"
    assert recorded["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert "x-other" not in recorded


async def test_base_url_with_v1_suffix(sim: AnthropicSim, http: aiohttp.ClientSession) -> None:
    channel = ChannelConfig(name="c", provider="anthropic", base_url=f"{sim.base_url}/v1/", api_key="k")
    reply = await AnthropicAdapter(channel, http).chat(_raw(), DEFAULT_API_KEY, 5.0)
    assert reply.status == 200
    assert sim.message_requests[-1].path == "/v1/messages"


async def test_stream(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    sim.config.cache_read_input_tokens = 40
    sim.config.cache_creation_input_tokens = 7
    resp = await adapter.open_stream(_raw(stream=True), DEFAULT_API_KEY, 5.0, upstream_model=MODEL)
    assert resp.status == 200
    events, parser = await _stream_events(resp)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: hi there"
    usage = Usage(input_uncached=5, input_cache_read=40, input_cache_write=7, output=3)
    assert events[-2:] == [StreamFinish("stop"), StreamUsage(usage)]
    assert parser.done and parser.usage == usage
    assert sim.message_requests[-1].headers["accept"] == "text/event-stream"


async def test_stream_with_thinking_and_tools(adapter: AnthropicAdapter) -> None:
    body = {
        **BODY,
        "max_tokens": 3000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "tools": [
            {
                "name": "a",
                "input_schema": {
                    "type": "object",
                    "properties": {"x": {"type": "integer"}},
                    "required": ["x"],
                },
            },
            {"name": "b", "input_schema": {"type": "object"}},
        ],
        "messages": [{"role": "user", "content": "call all tools"}],
        "stream": True,
    }
    events, parser = await _stream_events(await adapter.open_stream(_raw(body), DEFAULT_API_KEY, 5.0))
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingDelta))
    assert thinking == "Thinking about the request: call all tools"
    assert [e.signature for e in events if isinstance(e, ThinkingDelta) and e.signature] == [
        sign_thinking(thinking)
    ]
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "a"), (1, "b")]
    arguments = [
        "".join(e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == i) for i in (0, 1)
    ]
    assert arguments == ['{"x":0}', "{}"]
    assert StreamFinish("tool_calls") in events
    assert parser.done


async def test_stream_error_event_and_cut(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    sim.config.stream_error_after = 4
    events, parser = await _stream_events(await adapter.open_stream(_raw(stream=True), DEFAULT_API_KEY, 5.0))
    assert events[-1] == StreamError("Overloaded", "overloaded_error")
    assert parser.done and parser.error == {"type": "overloaded_error", "message": "Overloaded"}
    assert parser.usage is not None and parser.usage.input_uncached == 5
    sim.config.stream_error_after, sim.config.stream_cut_after = None, 4
    with pytest.raises(aiohttp.ClientPayloadError):
        await _stream_events(await adapter.open_stream(_raw(stream=True), DEFAULT_API_KEY, 5.0))


@pytest.mark.parametrize(
    ("status", "retryable", "client_fault"),
    [
        (400, False, True),
        (401, True, False),
        (402, True, False),
        (403, True, False),
        (404, False, True),
        (413, False, True),
        (429, True, False),
        (500, True, False),
        (504, True, False),
        (529, True, False),
    ],
)
async def test_error_classification(
    sim: AnthropicSim, adapter: AnthropicAdapter, status: int, retryable: bool, client_fault: bool
) -> None:
    for call in ("chat", "open_stream"):
        sim.config.fail_next = [status]
        with pytest.raises(ProviderError) as info:
            if call == "chat":
                await adapter.chat(_raw(), DEFAULT_API_KEY, 5.0)
            else:
                await adapter.open_stream(_raw(stream=True), DEFAULT_API_KEY, 5.0)
        error = info.value
        assert error.kind is FailureKind.HTTP and error.status == status
        assert (error.retryable, error.client_fault) == (retryable, client_fault)
        assert error.body is not None and error.body["type"] == "error"
        assert error.message == error.body["error"]["message"]
        if status in (429, 529):
            assert error.headers["retry-after"] == "1"
            assert "anthropic-ratelimit-requests-reset" in error.headers


async def test_real_validation_errors_are_client_faults(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(model="claude-nope"), DEFAULT_API_KEY, 5.0)
    assert (info.value.status, info.value.client_fault, info.value.message) == (
        404,
        True,
        "model: claude-nope",
    )
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(), "sk-wrong", 5.0)
    assert (info.value.status, info.value.retryable, info.value.client_fault) == (401, True, False)
    no_max = {k: v for k, v in BODY.items() if k != "max_tokens"}
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(no_max), DEFAULT_API_KEY, 5.0)
    assert (info.value.status, info.value.client_fault) == (400, True)


async def test_credit_balance_error_is_the_channels_problem(
    sim: AnthropicSim, adapter: AnthropicAdapter
) -> None:
    message = "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing."
    sim.config.fail_next = [
        {
            "status": 400,
            "body": {"type": "error", "error": {"type": "invalid_request_error", "message": message}},
        }
    ]
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(), DEFAULT_API_KEY, 5.0)
    assert (info.value.retryable, info.value.client_fault) == (True, False)


def test_classify_status_table() -> None:
    assert classify_status(418, None) == (False, True)
    assert classify_status(503, {"error": "text"}) == (True, False)
    assert classify_status(400, {"type": "error", "error": {"type": "overloaded_error", "message": ""}}) == (
        True,
        False,
    )
    google = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
    assert classify_status(429, google) == (True, False)


async def test_non_json_error_body(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    sim.config.fail_next = [{"status": 502, "body": ["not", "an", "object"]}]
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(), DEFAULT_API_KEY, 5.0)
    assert (info.value.status, info.value.retryable, info.value.body) == (502, True, None)
    assert info.value.message == "upstream answered HTTP 502"


async def test_timeouts_and_connection_failures(
    sim: AnthropicSim, adapter: AnthropicAdapter, http: aiohttp.ClientSession
) -> None:
    sim.config.latency_ms = 400
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(), DEFAULT_API_KEY, 0.05)
    assert info.value.kind is FailureKind.TIMEOUT and info.value.retryable
    with pytest.raises(ProviderError) as info:
        await adapter.open_stream(_raw(stream=True), DEFAULT_API_KEY, 0.05)
    assert info.value.kind is FailureKind.TIMEOUT
    sim.config.latency_ms = 0
    sim.config.drop_connection_next = 1
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_raw(), DEFAULT_API_KEY, 5.0)
    assert info.value.kind is FailureKind.CONNECT and info.value.retryable

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    closed = ChannelConfig(
        name="gone", provider="anthropic", base_url=f"http://127.0.0.1:{free_port}", api_key="k"
    )
    with pytest.raises(ProviderError) as info:
        await AnthropicAdapter(closed, http).chat(_raw(), "k", 5.0)
    assert info.value.kind is FailureKind.CONNECT


# ---- Vertex ---------------------------------------------------------------------------------------


async def test_vertex_chat(sim: AnthropicSim, vertex: VertexAnthropicAdapter) -> None:
    headers = {"anthropic-beta": "context-1m-2025-08-07", "anthropic-version": "2023-06-01"}
    reply = await vertex.chat(_raw(), DEFAULT_VERTEX_TOKEN, 5.0, upstream_model=MODEL, headers=headers)
    assert UPSTREAM.from_body(orjson.loads(reply.body)).parts == [TextPart("Echo: hi there")]
    recorded = sim.message_requests[-1]
    assert (
        recorded.path
        == f"/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/{MODEL}:rawPredict"
    )
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_VERTEX_TOKEN}"
    assert recorded.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert "anthropic-version" not in recorded.headers and "x-api-key" not in recorded.headers
    expected = {k: v for k, v in BODY.items() if k != "model"}
    assert recorded.json == {**expected, "anthropic_version": VERTEX_ANTHROPIC_VERSION}


async def test_vertex_stream_uses_the_model_argument(
    sim: AnthropicSim, vertex: VertexAnthropicAdapter
) -> None:
    resp = await vertex.open_stream(
        _raw(model="public-name", stream=True), DEFAULT_VERTEX_TOKEN, 5.0, upstream_model=MODEL
    )
    events, parser = await _stream_events(resp)
    assert parser.done and StreamFinish("stop") in events
    assert sim.message_requests[-1].path.endswith(f"/{MODEL}:streamRawPredict")


async def test_vertex_errors(sim: AnthropicSim, vertex: VertexAnthropicAdapter) -> None:
    with pytest.raises(ProviderError) as info:
        await vertex.chat(_raw(), "expired-token", 5.0, upstream_model=MODEL)
    assert (info.value.status, info.value.retryable, info.value.client_fault) == (401, True, False)
    assert info.value.message.startswith("Request had invalid authentication credentials")
    sim.config.fail_next = [529]
    with pytest.raises(ProviderError) as info:
        await vertex.chat(_raw(), DEFAULT_VERTEX_TOKEN, 5.0, upstream_model=MODEL)
    assert (info.value.status, info.value.retryable) == (529, True)
    with pytest.raises(ProviderError) as info:
        await vertex.chat(b"[]", DEFAULT_VERTEX_TOKEN, 5.0, upstream_model=MODEL)
    assert info.value.client_fault
    with pytest.raises(ProviderError):
        await vertex.chat(_raw({"max_tokens": 5, "messages": []}), DEFAULT_VERTEX_TOKEN, 5.0)


def test_vertex_base_url_must_be_the_models_prefix(http: aiohttp.ClientSession) -> None:
    channel = ChannelConfig(
        name="v",
        provider="vertex_anthropic",
        base_url="https://us-east5-aiplatform.googleapis.com",
        api_key="t",
    )
    with pytest.raises(ValueError, match="publishers/anthropic/models"):
        VertexAnthropicAdapter(channel, http)


# ---- translated bodies against the strict simulator -----------------------------------------------


async def test_translated_conversation_with_thinking_and_tools(adapter: AnthropicAdapter) -> None:
    """A canonical request (as from an OpenAI client) -> to_body -> the simulator, which checks tool
    pairing, block order and thinking signatures; the answers come back through from_body."""
    tools = [
        ToolDef("get_weather", "Weather.", {"type": "object", "properties": {"city": {"type": "string"}}})
    ]
    request = ChatRequest(
        model="public",
        messages=[Message("user", [TextPart("Weather in Paris?")])],
        tools=tools,
        reasoning_effort="low",
        max_tokens=3000,
        temperature=0.3,
    )
    first_body = UPSTREAM.to_body(request, upstream_model=MODEL)
    first = UPSTREAM.from_body(
        orjson.loads((await adapter.chat(orjson.dumps(first_body), DEFAULT_API_KEY, 5.0)).body)
    )
    assert first.finish_reason == "tool_calls"
    thinking, call = first.parts
    assert isinstance(thinking, ThinkingPart) and thinking.signature
    assert isinstance(call, ToolCallPart) and call.arguments == "{}"

    request.messages += [
        Message("assistant", first.parts),
        Message("user", [ToolResultPart(call.id, [TextPart("Sunny")])]),
        Message("user", [TextPart("Thanks!")]),
    ]
    second_body = UPSTREAM.to_body(request, upstream_model=MODEL)
    second = UPSTREAM.from_body(
        orjson.loads((await adapter.chat(orjson.dumps(second_body), DEFAULT_API_KEY, 5.0)).body)
    )
    assert second.finish_reason == "stop"
    assert second.parts[-1] == TextPart("Echo: Thanks!")
    assert second.usage.input_uncached > first.usage.input_uncached


async def test_passthrough_body_reaches_the_upstream(sim: AnthropicSim, adapter: AnthropicAdapter) -> None:
    raw = _raw(model="public-claude")
    await adapter.chat(passthrough_body(raw, orjson.loads(raw), MODEL), DEFAULT_API_KEY, 5.0)
    assert sim.message_requests[-1].json["model"] == MODEL
