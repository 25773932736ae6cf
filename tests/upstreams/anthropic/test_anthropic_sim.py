"""Tests of the Anthropic simulator itself, through the official SDK (sync and async) and raw aiohttp."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import pytest

from tests.upstreams.anthropic import (
    DEFAULT_API_KEY,
    DEFAULT_VERTEX_TOKEN,
    VERTEX_VERSION,
    AnthropicSim,
    SimConfig,
    run_sim_in_thread,
    sign_thinking,
    sim_in_thread,
)

MODEL = "sim-claude"
USER: Any = [{"role": "user", "content": "hello there world"}]
WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
}
TIME_TOOL: Any = {"name": "get_time", "input_schema": {"type": "object"}}
THINKING: Any = {"type": "enabled", "budget_tokens": 1024}
HEADERS = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}


@pytest.fixture
async def sim() -> AsyncIterator[AnthropicSim]:
    async with AnthropicSim() as server:
        yield server


@pytest.fixture
async def client(sim: AnthropicSim) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(api_key=DEFAULT_API_KEY, base_url=sim.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="module")
def threaded() -> Iterator[AnthropicSim]:
    with sim_in_thread() as server:
        yield server


def _dump(blocks: Any) -> list[dict[str, Any]]:
    return [b.model_dump(exclude_none=True) for b in blocks]


# ---- the SDK: plain messages ----------------------------------------------------------------------


def test_sync_client(threaded: AnthropicSim) -> None:
    threaded.reset()
    with anthropic.Anthropic(api_key=DEFAULT_API_KEY, base_url=threaded.base_url, max_retries=0) as c:
        message = c.messages.create(model=MODEL, max_tokens=100, messages=USER)
    assert message.type == "message" and message.role == "assistant"
    assert message.id.startswith("msg_")
    assert message.model == MODEL
    assert _dump(message.content) == [{"type": "text", "text": "Echo: hello there world"}]
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens == 6 and message.usage.output_tokens == 4
    recorded = threaded.message_requests[-1]
    assert recorded.json["max_tokens"] == 100
    assert recorded.headers["anthropic-version"]


def test_run_sim_in_thread_stop_is_idempotent() -> None:
    sim, stop = run_sim_in_thread(api_keys=["k1"], config=SimConfig(reply="fixed"))
    try:
        with anthropic.Anthropic(api_key="k1", base_url=sim.base_url, max_retries=0) as c:
            message = c.messages.create(model=MODEL, max_tokens=10, messages=USER)
        assert _dump(message.content) == [{"type": "text", "text": "fixed"}]
    finally:
        stop()
        stop()


async def test_async_client_with_system_and_cache_tokens(
    sim: AnthropicSim, client: anthropic.AsyncAnthropic
) -> None:
    sim.config.cache_read_input_tokens = 1500
    sim.config.cache_creation_input_tokens = 300
    message = await client.messages.create(
        model=MODEL, max_tokens=100, system=[{"type": "text", "text": "be brief"}], messages=USER
    )
    assert message.usage.input_tokens == 8  # excludes the cache figures, as Anthropic's does
    assert message.usage.cache_read_input_tokens == 1500
    assert message.usage.cache_creation_input_tokens == 300


async def test_max_tokens_and_stop_sequences(client: anthropic.AsyncAnthropic) -> None:
    cut = await client.messages.create(model=MODEL, max_tokens=2, messages=USER)
    assert _dump(cut.content) == [{"type": "text", "text": "Echo: hello"}]
    assert cut.stop_reason == "max_tokens"
    stopped = await client.messages.create(
        model=MODEL, max_tokens=50, stop_sequences=["there"], messages=USER
    )
    assert _dump(stopped.content) == [{"type": "text", "text": "Echo: hello "}]
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "there")


async def test_model_alias_and_omit_usage(sim: AnthropicSim, http: aiohttp.ClientSession) -> None:
    sim.config.update({"model_alias": "claude-sonnet-4-5-20250929", "omit_usage": True})
    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    async with http.post(f"{sim.base_url}/v1/messages", json=body, headers=HEADERS) as resp:
        data = await resp.json()
        assert resp.headers["request-id"].startswith("req_")
    assert data["model"] == "claude-sonnet-4-5-20250929"
    assert "usage" not in data


# ---- streaming ------------------------------------------------------------------------------------


async def test_streaming_text(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert pieces == ["Echo:", " hello", " there", " world"]
    assert _dump(final.content) == [{"type": "text", "text": "Echo: hello there world"}]
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 4)


async def test_stream_event_sequence(sim: AnthropicSim, http: aiohttp.ClientSession) -> None:
    body = {"model": MODEL, "max_tokens": 100, "messages": USER, "tools": [TIME_TOOL], "stream": True}
    body["messages"] = [{"role": "user", "content": "what time"}]
    async with http.post(f"{sim.base_url}/v1/messages", json=body, headers=HEADERS) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        raw = (await resp.read()).decode()
    names = [chunk.split("\n")[0] for chunk in raw.split("\n\n") if chunk]
    assert names == [
        "event: message_start",
        "event: ping",
        "event: content_block_start",
        "event: content_block_delta",  # input_json_delta "" first, as Anthropic sends
        "event: content_block_delta",
        "event: content_block_stop",
        "event: message_delta",
        "event: message_stop",
    ]


async def test_streaming_tools_and_thinking(client: anthropic.AsyncAnthropic) -> None:
    async with client.messages.stream(
        model=MODEL,
        max_tokens=4000,
        thinking=THINKING,
        tools=[WEATHER_TOOL, TIME_TOOL],
        messages=[{"role": "user", "content": "Please call all tools"}],
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert "signature" in kinds and "input_json" in kinds and "thinking" in kinds
    assert final.stop_reason == "tool_use"
    thinking, weather, clock = final.content
    assert thinking.type == "thinking"
    assert thinking.thinking == "Thinking about the request: Please call all tools"
    assert thinking.signature == sign_thinking(thinking.thinking)
    assert weather.type == "tool_use" and weather.name == "get_weather"
    assert weather.input == {"city": "placeholder", "days": 0}
    assert clock.type == "tool_use" and clock.name == "get_time" and clock.input == {}
    assert weather.id != clock.id


async def test_stream_error_event_raises(sim: AnthropicSim, client: anthropic.AsyncAnthropic) -> None:
    sim.config.stream_error_after = 3
    with pytest.raises(anthropic.APIStatusError) as info:
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
            async for _ in stream:
                pass
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"]["type"] == "overloaded_error"


async def test_stream_cut(sim: AnthropicSim, client: anthropic.AsyncAnthropic) -> None:
    sim.config.stream_cut_after = 4
    # mid-stream, the SDK lets its HTTP library's error through
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async with client.messages.stream(model=MODEL, max_tokens=100, messages=USER) as stream:
            async for _ in stream:
                pass


# ---- tools and thinking ---------------------------------------------------------------------------


async def test_tool_use_round_trip(sim: AnthropicSim, client: anthropic.AsyncAnthropic) -> None:
    sim.config.tool_preamble = "Let me check."
    first = await client.messages.create(
        model=MODEL, max_tokens=100, tools=[WEATHER_TOOL], messages=[{"role": "user", "content": "weather?"}]
    )
    assert first.stop_reason == "tool_use"
    preamble, call = first.content
    assert preamble.type == "text" and preamble.text == "Let me check."
    assert call.type == "tool_use" and call.id.startswith("toolu_")
    assistant_turn: Any = {"role": "assistant", "content": _dump(first.content)}
    second = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "weather?"},
            assistant_turn,
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}],
            },
        ],
    )
    assert second.stop_reason == "end_turn"
    assert _dump(second.content) == [{"type": "text", "text": "Echo: Sunny"}]


async def test_tool_choice(client: anthropic.AsyncAnthropic) -> None:
    tools = [WEATHER_TOOL, TIME_TOOL]
    forced = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=tools,
        tool_choice={"type": "tool", "name": "get_time"},
        messages=USER,
    )
    assert [b.name for b in forced.content if b.type == "tool_use"] == ["get_time"]
    single = await client.messages.create(
        model=MODEL,
        max_tokens=100,
        tools=tools,
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "call all tools"}],
    )
    assert [b.name for b in single.content if b.type == "tool_use"] == ["get_weather"]
    none = await client.messages.create(
        model=MODEL, max_tokens=100, tools=tools, tool_choice={"type": "none"}, messages=USER
    )
    assert none.stop_reason == "end_turn"


async def test_thinking_round_trip_and_signature_checks(client: anthropic.AsyncAnthropic) -> None:
    first = await client.messages.create(
        model=MODEL,
        max_tokens=2000,
        thinking=THINKING,
        messages=[{"role": "user", "content": "a redacted one"}],
    )
    thinking, redacted, text = first.content
    assert thinking.type == "thinking" and redacted.type == "redacted_thinking" and text.type == "text"
    history: Any = [
        {"role": "user", "content": "a redacted one"},
        {"role": "assistant", "content": _dump(first.content)},
        {"role": "user", "content": "and then?"},
    ]
    second = await client.messages.create(model=MODEL, max_tokens=2000, thinking=THINKING, messages=history)
    assert second.content[-1].type == "text"

    unsigned: Any = [dict(b) for b in history[1]["content"]]
    del unsigned[0]["signature"]
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        await client.messages.create(
            model=MODEL,
            max_tokens=2000,
            messages=[history[0], {"role": "assistant", "content": unsigned}, history[2]],
        )
    tampered: Any = [dict(b) for b in history[1]["content"]]
    tampered[0]["thinking"] = "something else"
    with pytest.raises(anthropic.BadRequestError, match="Invalid `signature`"):
        await client.messages.create(
            model=MODEL,
            max_tokens=2000,
            messages=[history[0], {"role": "assistant", "content": tampered}, history[2]],
        )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 500}}, "budget_tokens"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2000}, "max_tokens": 2000}, "max_tokens"),
        # this SDK's create() has no temperature or top_k any more: sent as extra body fields
        ({"thinking": THINKING, "max_tokens": 2000, "extra_body": {"temperature": 0.5}}, "temperature"),
        ({"thinking": THINKING, "max_tokens": 2000, "extra_body": {"top_k": 5}}, "top_k"),
        (
            {"thinking": THINKING, "max_tokens": 2000, "tools": [TIME_TOOL], "tool_choice": {"type": "any"}},
            "forces tool use",
        ),
        ({"messages": [{"role": "user", "content": ""}]}, "non-empty"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]}, "non-empty"),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {"role": "user", "content": "no result"},
                ]
            },
            "without `tool_result`",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9"}]}]},
            "unexpected `tool_use_id`",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}],
                    },
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "first"},
                            {"type": "tool_result", "tool_use_id": "t1"},
                        ],
                    },
                ]
            },
            "must come before",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {"type": "base64", "media_type": "image/bmp", "data": "x"},
                            }
                        ],
                    }
                ]
            },
            "media_type",
        ),
        ({"tools": [{"name": "bad name!", "input_schema": {"type": "object"}}]}, "name"),
    ],
)
async def test_validation_errors(
    client: anthropic.AsyncAnthropic, change: dict[str, Any], match: str
) -> None:
    params: Any = {"model": MODEL, "max_tokens": 100, "messages": USER, **change}
    with pytest.raises(anthropic.BadRequestError, match=match) as info:
        await client.messages.create(**params)
    assert info.value.status_code == 400
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "invalid_request_error"


# ---- errors ---------------------------------------------------------------------------------------


async def test_bad_key_and_unknown_model(sim: AnthropicSim) -> None:
    async with anthropic.AsyncAnthropic(api_key="sk-wrong", base_url=sim.base_url, max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"):
            await bad.messages.create(model=MODEL, max_tokens=10, messages=USER)
    async with anthropic.AsyncAnthropic(
        api_key=DEFAULT_API_KEY, base_url=sim.base_url, max_retries=0
    ) as good:
        with pytest.raises(anthropic.NotFoundError) as info:
            await good.messages.create(model="claude-nope", max_tokens=10, messages=USER)
    assert isinstance(info.value.body, dict)
    assert info.value.body["error"] == {"type": "not_found_error", "message": "model: claude-nope"}


@pytest.mark.parametrize(
    ("status", "error_class", "type_"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_injected_failures_map_to_sdk_errors(
    sim: AnthropicSim,
    client: anthropic.AsyncAnthropic,
    status: int,
    error_class: type[anthropic.APIStatusError],
    type_: str,
) -> None:
    sim.config.fail_next = [status]
    with pytest.raises(error_class) as info:
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    assert info.value.status_code == status
    assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == type_
    if status in (429, 529):
        assert info.value.response.headers["retry-after"] == "1"
    # the failure was used up: the next call succeeds
    assert (await client.messages.create(model=MODEL, max_tokens=10, messages=USER)).stop_reason == "end_turn"


async def test_raw_http_checks(sim: AnthropicSim, http: aiohttp.ClientSession) -> None:
    url = f"{sim.base_url}/v1/messages"
    body = {"model": MODEL, "max_tokens": 10, "messages": USER}
    async with http.post(url, json=body, headers={"x-api-key": DEFAULT_API_KEY}) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["message"] == "anthropic-version: header is required"
    async with http.post(url, json=body, headers={"anthropic-version": "2023-06-01"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["type"] == "authentication_error"
    async with http.post(url, json={"model": MODEL, "messages": USER}, headers=HEADERS) as resp:
        assert resp.status == 400
        error = (await resp.json())["error"]
        assert error == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    async with http.post(f"{sim.base_url}/v1/nothing", headers=HEADERS) as resp:
        assert resp.status == 404
        assert (await resp.json())["type"] == "error"


async def test_drop_connection_and_latency(sim: AnthropicSim, client: anthropic.AsyncAnthropic) -> None:
    sim.config.drop_connection_next = 1
    with pytest.raises(anthropic.APIConnectionError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER)
    sim.config.latency_ms = 300
    with pytest.raises(anthropic.APITimeoutError):
        await client.messages.create(model=MODEL, max_tokens=10, messages=USER, timeout=0.05)


# ---- Vertex, models, count_tokens, control API ----------------------------------------------------


async def test_vertex_route(sim: AnthropicSim, http: aiohttp.ClientSession) -> None:
    url = f"{sim.vertex_base_url()}/{MODEL}:rawPredict"
    auth = {"Authorization": f"Bearer {DEFAULT_VERTEX_TOKEN}"}
    body: dict[str, Any] = {"anthropic_version": VERTEX_VERSION, "max_tokens": 10, "messages": USER}
    async with http.post(url, json=body, headers=auth) as resp:
        assert resp.status == 200
        assert (await resp.json())["content"] == [{"type": "text", "text": "Echo: hello there world"}]
    async with http.post(url, json={**body, "model": MODEL}, headers=auth) as resp:
        assert resp.status == 400
    async with http.post(url, json={**body, "anthropic_version": "2023-06-01"}, headers=auth) as resp:
        assert resp.status == 400
    async with http.post(url, json=body, headers={"Authorization": "Bearer nope"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["status"] == "UNAUTHENTICATED"
    stream_url = f"{sim.vertex_base_url()}/{MODEL}:streamRawPredict"
    async with http.post(stream_url, json={**body, "stream": True}, headers=auth) as resp:
        assert resp.status == 200
        assert (await resp.read()).startswith(b"event: message_start\n")


async def test_models_count_tokens_and_control_api(sim: AnthropicSim, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sim.base_url}/v1/models", headers=HEADERS) as resp:
        listing = await resp.json()
    assert MODEL in [m["id"] for m in listing["data"]] and listing["has_more"] is False
    body = {"model": MODEL, "messages": USER}
    async with http.post(f"{sim.base_url}/v1/messages/count_tokens", json=body, headers=HEADERS) as resp:
        assert await resp.json() == {"input_tokens": 6}
    async with http.post(f"{sim.base_url}/_sim/config", json={"reply": "set remotely"}) as resp:
        assert (await resp.json())["reply"] == "set remotely"
    assert sim.config.reply == "set remotely"
    async with http.post(f"{sim.base_url}/_sim/config", json={"nope": 1}) as resp:
        assert resp.status == 400
    async with http.get(f"{sim.base_url}/_sim/requests") as resp:
        assert len((await resp.json())["data"]) == 2
    async with http.get(f"{sim.base_url}/_sim/stats") as resp:
        assert (await resp.json())["requests"] == 2
    async with http.post(f"{sim.base_url}/_sim/reset") as resp:
        assert (await resp.json())["reply"] is None
    assert sim.requests == [] and sim.config.reply is None
