"""Tests of the OpenAI simulator itself, through the official SDK (sync and async) and raw aiohttp."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import openai
import pytest

from tests.upstreams.openai import (
    DEFAULT_API_KEY,
    OpenAISim,
    SimConfig,
    mask_key,
    placeholder,
    run_sim_in_thread,
    sim_in_thread,
    word_pieces,
)

USER: Any = [{"role": "user", "content": "hello there world"}]
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}
TIME_TOOL: Any = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


@pytest.fixture
async def sim() -> AsyncIterator[OpenAISim]:
    async with OpenAISim() as server:
        yield server


@pytest.fixture
async def client(sim: OpenAISim) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key=DEFAULT_API_KEY, base_url=sim.base_url, max_retries=0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def thread_sim() -> Iterator[OpenAISim]:
    server, stop = run_sim_in_thread()
    try:
        yield server
    finally:
        stop()


@pytest.fixture
def sync_client(thread_sim: OpenAISim) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key=DEFAULT_API_KEY, base_url=thread_sim.base_url, max_retries=0) as c:
        yield c


async def post_chat(
    http: aiohttp.ClientSession, sim: OpenAISim, body: Any, headers: dict[str, str] = AUTH
) -> aiohttp.ClientResponse:
    return await http.post(f"{sim.base_url}/chat/completions", json=body, headers=headers)


async def wait_for(predicate: Callable[[], bool], limit_s: float = 5.0) -> None:
    deadline = time.monotonic() + limit_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# -- non-streaming -----------------------------------------------------------------------------


async def test_async_completion_echoes_last_user_message(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "system", "content": "be brief"}, *USER]
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.system_fingerprint
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello there world"
    assert choice.message.refusal is None
    assert choice.logprobs is None
    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens == (2 + 3) + (3 + 3)
    assert usage.completion_tokens == 4
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0

    [recorded] = sim.requests
    assert recorded.method == "POST" and recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    assert recorded.json["messages"] == messages
    assert json.loads(recorded.body) == recorded.json


def test_sync_completion_with_content_parts(thread_sim: OpenAISim, sync_client: openai.OpenAI) -> None:
    completion = sync_client.chat.completions.create(
        model="sim-model",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "first part"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "text", "text": "second"},
                ],
            }
        ],
    )
    assert completion.choices[0].message.content == "Echo: first part second"
    assert thread_sim.chat_requests[0].json["model"] == "sim-model"


async def test_max_tokens_trims_reply_and_sets_length(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER, max_tokens=2)
    assert completion.choices[0].message.content == "Echo: hello"
    assert completion.choices[0].finish_reason == "length"
    completion = await client.chat.completions.create(model="gpt-4o", messages=USER, max_completion_tokens=3)
    assert completion.choices[0].message.content == "Echo: hello there"


async def test_n_choices_and_logprobs(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=USER, n=3, logprobs=True, top_logprobs=2
    )
    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert completion.usage is not None and completion.usage.completion_tokens == 3 * 4
    logprobs = completion.choices[2].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert "".join(t.token for t in logprobs.content) == "Echo: hello there world"
    assert len(logprobs.content[0].top_logprobs) == 2


async def test_reply_cached_tokens_and_model_alias(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.reply = "fixed answer"
    sim.config.cached_tokens = 4
    sim.config.model_alias = "gpt-4o-mini-2024-07-18"
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.choices[0].message.content == "fixed answer"
    assert completion.model == "gpt-4o-mini-2024-07-18"
    assert completion.usage is not None and completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 4


async def test_reasoning_model_reports_reasoning(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model="sim-reasoner", messages=USER)
    message = completion.choices[0].message
    assert message.content == "Echo: hello there world"
    assert (message.model_extra or {})["reasoning_content"].startswith("Thinking")
    assert completion.usage is not None and completion.usage.completion_tokens_details is not None
    reasoning_tokens = completion.usage.completion_tokens_details.reasoning_tokens
    assert reasoning_tokens is not None and reasoning_tokens > 0
    assert completion.usage.completion_tokens == 4 + reasoning_tokens


async def test_response_format_json_schema_and_json_object(client: openai.AsyncOpenAI) -> None:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "age": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "kind": {"type": "string", "enum": ["a", "b"]},
            "address": {
                "type": "object",
                "properties": {"zip": {"type": ["string", "null"]}},
                "required": ["zip"],
            },
            "optional": {"type": "boolean"},
        },
        "required": ["name", "age", "tags", "kind", "address"],
    }
    completion = await client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    data = json.loads(completion.choices[0].message.content or "")
    assert data == {
        "name": "placeholder",
        "age": 0,
        "tags": [],
        "kind": "a",
        "address": {"zip": "placeholder"},
    }

    completion = await client.chat.completions.create(
        model="gpt-4o", messages=USER, response_format={"type": "json_object"}
    )
    assert json.loads(completion.choices[0].message.content or "") == {"reply": "Echo: hello there world"}


# -- tools -------------------------------------------------------------------------------------


async def test_tool_calls_one_or_all(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "placeholder", "days": 0}

    everything: Any = [{"role": "user", "content": "Please call all tools now"}]
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=everything, tools=[WEATHER_TOOL, TIME_TOOL]
    )
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]  # type: ignore[union-attr]
    assert len({c.id for c in calls}) == 2


async def test_tool_choice_none_and_tool_results_give_text(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=USER, tools=[WEATHER_TOOL], tool_choice="none"
    )
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"

    after_tool: Any = [
        *USER,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    completion = await client.chat.completions.create(
        model="gpt-4o", messages=after_tool, tools=[WEATHER_TOOL]
    )
    assert completion.choices[0].message.content == "Echo: hello there world"


async def test_forced_tool_choice_calls_that_tool(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="gpt-4o",
        messages=USER,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    [call] = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"  # type: ignore[union-attr]


# -- streaming ---------------------------------------------------------------------------------


async def test_async_stream_with_include_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert {c.id for c in chunks} == {chunks[0].id}
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].choices[0].delta.content == ""
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello there world"
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == 4  # one per word
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 4
    assert all(c.usage is None for c in chunks[:-1])


def test_sync_stream_without_usage(sync_client: openai.OpenAI) -> None:
    stream = sync_client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = list(stream)
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Echo: hello there world"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_wire_format(sim: OpenAISim, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}
    async with await post_chat(http, sim, body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    payloads = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(e.startswith("data: ") and "\n" not in e for e in events[:-1])
    assert all("usage" in p for p in payloads)
    assert payloads[-1]["choices"] == [] and payloads[-1]["usage"]["total_tokens"] > 0

    body.pop("stream_options")
    async with await post_chat(http, sim, body) as response:
        raw = (await response.read()).decode()
    assert '"usage"' not in raw


async def test_omit_stream_usage(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.omit_stream_usage = True
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=USER, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


async def test_stream_multiple_tool_calls_keep_their_index(client: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "call all tools"}]
    stream = await client.chat.completions.create(
        model="gpt-4o", messages=messages, tools=[WEATHER_TOOL, TIME_TOOL], stream=True
    )
    calls: dict[int, dict[str, str]] = {}
    deltas = []
    finish = None
    async for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            deltas.append(delta)
            if delta.id is not None:
                assert delta.index not in calls
                assert delta.type == "function" and delta.function is not None
                assert delta.function.arguments == ""
                calls[delta.index] = {"id": delta.id, "name": delta.function.name or "", "arguments": ""}
            else:
                assert delta.type is None and delta.function is not None and delta.function.name is None
            calls[delta.index]["arguments"] += (delta.function and delta.function.arguments) or ""

    assert finish == "tool_calls"
    assert sorted(calls) == [0, 1]
    assert [calls[0]["name"], calls[1]["name"]] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "placeholder", "days": 0}
    assert json.loads(calls[1]["arguments"]) == {}
    assert sum(d.index == 0 and d.id is None for d in deltas) > 1  # arguments came in fragments


async def test_stream_reasoning_comes_before_content(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model="sim-reasoner", messages=USER, stream=True)
    kinds = []
    async for chunk in stream:
        extra = chunk.choices[0].delta.model_extra or {}
        if extra.get("reasoning_content"):
            kinds.append("reasoning")
        elif chunk.choices[0].delta.content:
            kinds.append("content")
    assert kinds[0] == "reasoning" and kinds[-1] == "content"
    assert kinds == sorted(kinds, reverse=True)


async def test_chunk_delay_spaces_events(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.chunk_delay_ms = 20
    started = time.monotonic()
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    chunks = [chunk async for chunk in stream]
    # role + 4 words + finish + [DONE] = 7 events, 6 gaps
    assert len(chunks) == 6
    assert time.monotonic() - started >= 6 * 0.02 * 0.9


# -- auth, validation, models ------------------------------------------------------------------


async def test_missing_key_gives_openai_401(sim: OpenAISim, http: aiohttp.ClientSession) -> None:
    async with await post_chat(http, sim, {"model": "gpt-4o", "messages": USER}, headers={}) as response:
        assert response.status == 401
        error = (await response.json())["error"]
    assert error["message"].startswith("You didn't provide an API key.")
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None and error["code"] is None


async def test_wrong_key_raises_authentication_error(sim: OpenAISim) -> None:
    wrong = "sk-wrongkey-0123456789abcdef"
    async with openai.AsyncOpenAI(api_key=wrong, base_url=sim.base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            await bad.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"
    assert f"Incorrect API key provided: {mask_key(wrong)}." in caught.value.message
    assert wrong not in caught.value.message
    assert mask_key(wrong) == "sk-wro******************cdef"


def test_sync_models_and_not_found(sync_client: openai.OpenAI) -> None:
    ids = [m.id for m in sync_client.models.list()]
    assert {"gpt-4o-mini", "gpt-4o", "sim-model", "deepseek-chat", "sim-reasoner"} <= set(ids)
    model = sync_client.models.retrieve("gpt-4o")
    assert (model.id, model.object, model.owned_by) == ("gpt-4o", "model", "openai")
    with pytest.raises(openai.NotFoundError):
        sync_client.models.retrieve("nope")
    with pytest.raises(openai.NotFoundError) as caught:
        sync_client.chat.completions.create(model="gpt-9000", messages=USER)
    assert caught.value.code == "model_not_found"
    assert "The model `gpt-9000` does not exist or you do not have access to it." in caught.value.message


@pytest.mark.parametrize(
    ("body", "param", "status"),
    [
        ({"messages": USER}, "model", 400),
        ({"model": "gpt-4o"}, "messages", 400),
        ({"model": "gpt-4o", "messages": []}, "messages", 400),
        ({"model": "gpt-4o", "messages": "hi"}, "messages", 400),
        ({"model": "gpt-4o", "messages": USER, "n": 0}, "n", 400),
        (
            {"model": "gpt-4o", "messages": USER, "stream_options": {"include_usage": True}},
            "stream_options",
            400,
        ),
        ({"model": "missing", "messages": USER}, None, 404),
    ],
)
async def test_validation_errors(
    sim: OpenAISim, http: aiohttp.ClientSession, body: Any, param: str | None, status: int
) -> None:
    async with await post_chat(http, sim, body) as response:
        assert response.status == status
        error = (await response.json())["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert set(error) == {"message", "type", "param", "code"}


async def test_non_json_body_and_unknown_url(sim: OpenAISim, http: aiohttp.ClientSession) -> None:
    url = f"{sim.base_url}/chat/completions"
    async with http.post(url, data=b"{not json", headers=AUTH) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["message"].startswith("We could not parse the JSON body of your request.")
    async with http.get(url, headers=AUTH) as response:
        assert response.status == 404
        assert (await response.json())["error"]["message"] == "Invalid URL (GET /v1/chat/completions)"


# -- failure injection ---------------------------------------------------------------------------


async def test_fail_next_429_then_recovers(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.fail_next = [429]
    with pytest.raises(openai.RateLimitError) as caught:
        await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    error = caught.value
    assert error.code == "rate_limit_exceeded"
    assert isinstance(error.body, dict) and error.body["type"] == "requests"
    assert "gpt-4o-mini" in error.message
    assert error.response.headers["retry-after"] == "1"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    completion = await client.chat.completions.create(model="gpt-4o-mini", messages=USER)
    assert completion.choices[0].message.content


def test_fail_next_server_errors_sync(thread_sim: OpenAISim, sync_client: openai.OpenAI) -> None:
    thread_sim.config.fail_next = [500, 503, 400, {"status": 418, "body": {"error": {"message": "teapot"}}}]
    with pytest.raises(openai.InternalServerError) as caught:
        sync_client.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.status_code == 500
    assert caught.value.body == {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }
    with pytest.raises(openai.InternalServerError) as caught:
        sync_client.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.status_code == 503
    with pytest.raises(openai.BadRequestError):
        sync_client.chat.completions.create(model="gpt-4o", messages=USER)
    with pytest.raises(openai.APIStatusError) as other:
        sync_client.chat.completions.create(model="gpt-4o", messages=USER)
    assert other.value.status_code == 418 and other.value.body == {"message": "teapot"}
    assert sync_client.chat.completions.create(model="gpt-4o", messages=USER).choices


async def test_latency(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.latency_ms = 150
    started = time.monotonic()
    await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert time.monotonic() - started >= 0.14


async def test_drop_connection_next(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.drop_connection_next = 1
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="gpt-4o", messages=USER)
    assert sim.config.drop_connection_next == 0
    assert (await client.chat.completions.create(model="gpt-4o", messages=USER)).choices
    assert len(sim.chat_requests) == 2


async def test_stream_cut_after(
    sim: OpenAISim, client: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    sim.config.stream_cut_after = 3
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received.append(chunk)
    assert len(received) == 3

    async with await post_chat(http, sim, {"model": "gpt-4o", "messages": USER, "stream": True}) as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert sim.cancelled_streams == 0
    await wait_for(lambda: sim.active_streams == 0)


async def test_cancelled_streams_are_counted(sim: OpenAISim, http: aiohttp.ClientSession) -> None:
    sim.config.chunk_delay_ms = 30
    response = await post_chat(http, sim, {"model": "gpt-4o", "messages": USER, "stream": True})
    assert (await response.content.readline()).startswith(b"data: ")
    await wait_for(lambda: sim.active_streams == 1)
    response.close()  # drop the connection mid-stream
    await wait_for(lambda: sim.cancelled_streams == 1)
    await wait_for(lambda: sim.active_streams == 0)


async def test_cancelled_stream_via_sdk(sim: OpenAISim, client: openai.AsyncOpenAI) -> None:
    sim.config.chunk_delay_ms = 30
    stream = await client.chat.completions.create(model="gpt-4o", messages=USER, stream=True)
    async for _ in stream:
        break
    await stream.close()
    await wait_for(lambda: sim.cancelled_streams == 1)
    assert sim.active_streams == 0


# -- control API ---------------------------------------------------------------------------------


async def test_control_api(sim: OpenAISim, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sim.root_url}/_sim/config", json={"fail_next": [502], "reply": "ok"}) as r:
        assert r.status == 200
        assert (await r.json())["fail_next"] == [502]
    assert sim.config.fail_next == [502]
    async with await post_chat(http, sim, {"model": "gpt-4o", "messages": USER}) as r:
        assert r.status == 502
        assert (await r.json())["error"]["type"] == "server_error"
    async with await post_chat(http, sim, {"model": "gpt-4o", "messages": USER}) as r:
        assert (await r.json())["choices"][0]["message"]["content"] == "ok"
        assert r.headers["x-request-id"].startswith("req_")

    async with http.get(f"{sim.root_url}/_sim/requests") as r:
        recorded = (await r.json())["data"]
    assert [x["path"] for x in recorded] == ["/v1/chat/completions"] * 2
    assert recorded[0]["headers"]["authorization"] == AUTH["Authorization"]
    assert recorded[0]["json"]["model"] == "gpt-4o"

    async with http.post(f"{sim.root_url}/_sim/config", json={"no_such_knob": 1}) as r:
        assert r.status == 400
    async with http.get(f"{sim.root_url}/_sim/stats") as r:
        assert await r.json() == {"requests": 2, "active_streams": 0, "cancelled_streams": 0}

    async with http.post(f"{sim.root_url}/_sim/reset") as r:
        assert r.status == 200
    assert sim.config == SimConfig()
    assert sim.requests == []


async def test_constructor_config_is_what_reset_restores() -> None:
    config = SimConfig(models=["only-model"], reply="hi")
    async with OpenAISim(api_keys={"k1", "k2"}, config=config) as server:
        server.config.reply = "changed"
        server.config.fail_next.append(500)
        server.reset()
        assert server.config == config
        assert config.fail_next == []
        async with openai.AsyncOpenAI(api_key="k2", base_url=server.base_url, max_retries=0) as c:
            completion = await c.chat.completions.create(model="only-model", messages=USER)
            assert completion.choices[0].message.content == "hi"
            with pytest.raises(openai.NotFoundError):
                await c.chat.completions.create(model="gpt-4o", messages=USER)


def test_sim_in_thread_context_manager() -> None:
    with sim_in_thread() as server:
        server.config.reply = "from thread"
        with openai.OpenAI(api_key=DEFAULT_API_KEY, base_url=server.base_url, max_retries=0) as c:
            assert c.chat.completions.create(model="gpt-4o", messages=USER).choices[0].message.content == (
                "from thread"
            )


# -- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "one", " two  words ", "Echo: a\nb\tc"])
def test_word_pieces_rebuild_the_text(text: str) -> None:
    assert "".join(word_pieces(text)) == text
    assert len(word_pieces(text)) == max(len(text.split()), 1 if text else 0)


def test_mask_key_and_placeholder() -> None:
    assert mask_key("short") == "short"
    assert mask_key("sk-abcdefghijklmnop") == "sk-abc*********mnop"
    assert placeholder({"anyOf": [{"type": "number"}, {"type": "null"}]}) == 0
    assert placeholder({"const": "x"}) == "x"
