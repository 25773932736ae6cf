"""The Gemini simulator, driven by the official google-genai SDK (async and sync) and raw aiohttp."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from tests.upstreams.gemini import (
    DEFAULT_API_KEY,
    DEFAULT_VERTEX_TOKEN,
    GeminiSim,
    SimConfig,
    signature_for,
    sim_in_thread,
)

# The SDK subclasses aiohttp.ClientSession for its async client, which aiohttp discourages.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession from ClientSession is discouraged:DeprecationWarning"
)

FLASH = "gemini-2.5-flash"
KEY_HEADER = {"x-goog-api-key": DEFAULT_API_KEY}
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
    },
)
TIME = types.FunctionDeclaration(
    name="get_time",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"zone": types.Schema(type=types.Type.STRING)}, required=["zone"]
    ),
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)


@pytest.fixture
async def sim() -> AsyncIterator[GeminiSim]:
    async with GeminiSim() as server:
        yield server


def _client(sim: GeminiSim, api_key: str = DEFAULT_API_KEY, version: str | None = None) -> genai.Client:
    return genai.Client(
        api_key=api_key, http_options=types.HttpOptions(base_url=sim.base_url, api_version=version)
    )


@pytest.fixture
async def client(sim: GeminiSim) -> AsyncIterator[genai.client.AsyncClient]:
    async with _client(sim).aio as aio:
        yield aio


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _text_config(**fields: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(automatic_function_calling=NO_AFC, **fields)


# ---- generate_content through the SDK ------------------------------------------------------------


async def test_generate_content_echoes_and_reports_usage(sim: GeminiSim, client: Any) -> None:
    response = await client.models.generate_content(model=FLASH, contents="hello there world")
    assert response.text == "Echo: hello there world"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == FLASH
    assert response.response_id
    usage = response.usage_metadata
    assert usage.prompt_token_count == 3 + 3
    assert usage.candidates_token_count == 4
    assert usage.thoughts_token_count == 7  # a thinking model thinks even when thoughts are not shown
    assert usage.total_token_count == 6 + 4 + 7
    recorded = sim.requests[-1]
    assert recorded.path == f"/v1/models/{FLASH}:generateContent"
    assert recorded.headers["x-goog-api-key"] == DEFAULT_API_KEY
    assert recorded.json["contents"] == [{"parts": [{"text": "hello there world"}], "role": "user"}]


async def test_v1beta_system_instruction_and_generation_config(sim: GeminiSim) -> None:
    async with _client(sim, version="v1beta").aio as aio:
        client: Any = aio
        response = await client.models.generate_content(
            model="gemini-2.0-flash",
            contents=["one two three four"],
            config=types.GenerateContentConfig(
                system_instruction="Be brief.",
                max_output_tokens=2,
                temperature=0.1,
                stop_sequences=["x"],
                candidate_count=2,
                seed=1,
            ),
        )
    assert sim.requests[-1].path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert [c.content.parts[0].text for c in response.candidates] == ["Echo: one", "Echo: one"]
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata.thoughts_token_count is None  # gemini-2.0-flash does not think
    sent = sim.requests[-1].json
    assert sent["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert sent["generationConfig"]["maxOutputTokens"] == 2


async def test_stream_yields_word_chunks_then_finish_and_usage(sim: GeminiSim, client: Any) -> None:
    sim.config.cached_tokens = 4
    chunks = [c async for c in await client.models.generate_content_stream(model=FLASH, contents="a b c")]
    assert "".join(c.text or "" for c in chunks) == "Echo: a b c"
    assert len(chunks) == 4
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 4
    assert chunks[-1].usage_metadata.cached_content_token_count == 4
    assert chunks[-1].usage_metadata.prompt_token_count == 3 + 3 + 4
    assert chunks[0].usage_metadata.candidates_token_count is None
    recorded = sim.requests[-1]
    assert recorded.path == f"/v1/models/{FLASH}:streamGenerateContent"
    assert recorded.query == {"alt": "sse"}


async def test_function_calls(sim: GeminiSim, client: Any) -> None:
    tools = [types.Tool(function_declarations=[WEATHER, TIME])]
    one = await client.models.generate_content(
        model=FLASH, contents="weather?", config=_text_config(tools=tools)
    )
    assert [(c.name, c.args, c.id) for c in one.function_calls] == [
        ("get_weather", {"city": "placeholder", "days": 0}, None)
    ]
    every = await client.models.generate_content(
        model=FLASH, contents="please call all tools", config=_text_config(tools=tools)
    )
    assert [(c.name, c.args) for c in every.function_calls] == [
        ("get_weather", {"city": "placeholder", "days": 0}),
        ("get_time", {"zone": "placeholder"}),
    ]
    assert every.candidates[0].finish_reason == types.FinishReason.STOP
    forced = await client.models.generate_content(
        model=FLASH,
        contents="weather?",
        config=_text_config(
            tools=tools,
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(
                    mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_time"]
                )
            ),
        ),
    )
    assert [c.name for c in forced.function_calls] == ["get_time"]
    none = await client.models.generate_content(
        model=FLASH,
        contents="weather?",
        config=_text_config(
            tools=tools,
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.NONE)
            ),
        ),
    )
    assert none.function_calls is None and none.text == "Echo: weather?"
    sim.config.function_call_ids = True
    with_ids = await client.models.generate_content(
        model=FLASH, contents="x", config=_text_config(tools=tools)
    )
    assert with_ids.function_calls[0].id.startswith("fc_")


async def test_streamed_function_calls_arrive_whole_in_the_last_chunk(client: Any) -> None:
    stream = await client.models.generate_content_stream(
        model="gemini-2.0-flash",
        contents="call all tools",
        config=_text_config(tools=[types.Tool(function_declarations=[WEATHER, TIME])]),
    )
    chunks = [c async for c in stream]
    assert len(chunks) == 1
    assert [c.name for c in chunks[0].function_calls] == ["get_weather", "get_time"]


async def test_function_response_turn_gets_a_text_answer(client: Any) -> None:
    contents = [
        types.Content(role="user", parts=[types.Part.from_text(text="weather in Paris")]),
        types.Content(
            role="model", parts=[types.Part.from_function_call(name="get_weather", args={"city": "Paris"})]
        ),
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name="get_weather", response={"output": "sunny"})],
        ),
    ]
    response = await client.models.generate_content(
        model="gemini-2.0-flash",
        contents=contents,
        config=_text_config(tools=[types.Tool(function_declarations=[WEATHER])]),
    )
    assert response.text == "Echo: weather in Paris"


async def test_thinking_shows_thoughts_and_signs_the_answer(sim: GeminiSim, client: Any) -> None:
    config = _text_config(thinking_config=types.ThinkingConfig(include_thoughts=True, thinking_budget=1024))
    response = await client.models.generate_content(model=FLASH, contents="why", config=config)
    thought, answer = response.candidates[0].content.parts
    assert (thought.thought, thought.text) == (True, "Thinking about the request: why")
    assert answer.text == "Echo: why"
    assert answer.thought_signature == base64.b64decode(signature_for(thought.text))
    assert response.usage_metadata.thoughts_token_count == 5
    off = await client.models.generate_content(
        model=FLASH,
        contents="why",
        config=_text_config(thinking_config=types.ThinkingConfig(thinking_budget=0)),
    )
    assert len(off.candidates[0].content.parts) == 1
    assert off.usage_metadata.thoughts_token_count is None
    sim.config.thinking = False
    plain = await client.models.generate_content(model=FLASH, contents="why", config=config)
    assert [p.thought for p in plain.candidates[0].content.parts] == [None]


async def test_streamed_thoughts_come_first(client: Any) -> None:
    config = _text_config(thinking_config=types.ThinkingConfig(include_thoughts=True))
    chunks = [
        c
        async for c in await client.models.generate_content_stream(model=FLASH, contents="hi", config=config)
    ]
    first = chunks[0].candidates[0].content.parts[0]
    assert first.thought is True
    assert chunks[1].candidates[0].content.parts[0].thought_signature is not None
    assert "".join(c.text or "" for c in chunks[1:]) == "Echo: hi"


async def test_gemini_3_needs_a_signature_on_function_calls_of_the_current_turn(client: Any) -> None:
    def history(signature: bytes | None) -> list[types.Content]:
        call = types.Part.from_function_call(name="get_weather", args={"city": "Paris"})
        call.thought_signature = signature
        return [
            types.Content(role="user", parts=[types.Part.from_text(text="weather")]),
            types.Content(role="model", parts=[call]),
            types.Content(
                role="user", parts=[types.Part.from_function_response(name="get_weather", response={"t": 1})]
            ),
        ]

    config = _text_config(tools=[types.Tool(function_declarations=[WEATHER])])
    with pytest.raises(errors.ClientError) as info:
        await client.models.generate_content(
            model="gemini-3-pro-preview", contents=history(None), config=config
        )
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert "thought_signature" in (info.value.message or "")
    for signature in (b"skip_thought_signature_validator", b"\x01\x02real"):
        ok = await client.models.generate_content(
            model="gemini-3-pro-preview", contents=history(signature), config=config
        )
        assert ok.text == "Echo: weather"


async def test_structured_output(client: Any) -> None:
    config = _text_config(
        response_mime_type="application/json",
        response_schema=types.Schema(
            type=types.Type.OBJECT, properties={"n": types.Schema(type=types.Type.INTEGER)}, required=["n"]
        ),
    )
    response = await client.models.generate_content(model=FLASH, contents="count", config=config)
    assert json.loads(response.text) == {"n": 0}
    plain = await client.models.generate_content(
        model=FLASH, contents="count", config=_text_config(response_mime_type="application/json")
    )
    assert json.loads(plain.text) == {"reply": "Echo: count"}


async def test_images_are_accepted(sim: GeminiSim, client: Any) -> None:
    image = types.Part.from_bytes(data=b"\x89PNG\r\n", mime_type="image/png")
    response = await client.models.generate_content(model=FLASH, contents=[image, "what is this"])
    assert response.text == "Echo: what is this"
    # the SDK writes the blob's own keys in snake_case: the API takes both spellings
    assert sim.requests[-1].json["contents"][0]["parts"][0]["inlineData"] == {
        "data": base64.b64encode(b"\x89PNG\r\n").decode(),
        "mime_type": "image/png",
    }


async def test_count_tokens_and_model_listing(client: Any) -> None:
    counted = await client.models.count_tokens(model=FLASH, contents="one two")
    assert counted.total_tokens == 5
    models = [m async for m in await client.models.list()]
    assert [m.name for m in models] == [
        "models/gemini-2.5-flash",
        "models/gemini-2.5-pro",
        "models/gemini-2.0-flash",
        "models/gemini-3-pro-preview",
    ]
    model = await client.models.get(model=FLASH)
    assert model.input_token_limit == 1_048_576
    assert "generateContent" in (model.supported_actions or [])


# ---- errors through the SDK ----------------------------------------------------------------------


async def test_bad_key_is_400_api_key_invalid(sim: GeminiSim) -> None:
    async with _client(sim, api_key="AIza-wrong").aio as client:
        with pytest.raises(errors.ClientError) as info:
            await client.models.generate_content(model=FLASH, contents="hi")
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert info.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


async def test_unknown_model_is_404_not_found(client: Any) -> None:
    with pytest.raises(errors.ClientError) as info:
        await client.models.generate_content(model="gemini-9", contents="hi")
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")
    assert "models/gemini-9 is not found" in (info.value.message or "")


@pytest.mark.parametrize(
    ("status", "name", "error_class"),
    [
        (429, "RESOURCE_EXHAUSTED", errors.ClientError),
        (403, "PERMISSION_DENIED", errors.ClientError),
        (500, "INTERNAL", errors.ServerError),
        (503, "UNAVAILABLE", errors.ServerError),
        (504, "DEADLINE_EXCEEDED", errors.ServerError),
    ],
)
async def test_injected_failures(
    sim: GeminiSim, client: Any, status: int, name: str, error_class: type[errors.APIError]
) -> None:
    sim.config.fail_next = [status]
    with pytest.raises(error_class) as info:
        await client.models.generate_content(model=FLASH, contents="hi")
    assert (info.value.code, info.value.status) == (status, name)
    assert (await client.models.generate_content(model=FLASH, contents="hi")).text == "Echo: hi"


def test_sync_client_against_a_threaded_sim() -> None:
    with sim_in_thread(config=SimConfig(reply="fixed reply")) as sim:
        client = _client(sim)
        try:
            assert client.models.generate_content(model=FLASH, contents="x").text == "fixed reply"
            streamed = client.models.generate_content_stream(model=FLASH, contents="x")
            assert "".join(c.text or "" for c in streamed) == "fixed reply"
        finally:
            client.close()


# ---- the wire, raw -----------------------------------------------------------------------------


async def _post(
    http: aiohttp.ClientSession, url: str, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.post(url, json=body, headers=KEY_HEADER if headers is None else headers) as resp:
        return resp.status, await resp.json()


async def test_sse_framing_is_exactly_googles(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    url = f"{sim.base_url}/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"
    async with http.post(url, json={"contents": [{"parts": [{"text": "hi"}]}]}, headers=KEY_HEADER) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        raw = await resp.read()
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and len(events) == 3
    chunks = [json.loads(e[len(b"data: ") :]) for e in events[:-1]]
    assert [c["candidates"][0]["content"]["parts"] for c in chunks] == [
        [{"text": "Echo:"}],
        [{"text": " hi"}],
    ]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[0]["responseId"] == chunks[1]["responseId"]


async def test_stream_without_alt_sse_is_a_json_array(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    url = f"{sim.base_url}/v1beta/models/{FLASH}:streamGenerateContent?key={DEFAULT_API_KEY}"
    status, chunks = await _post(http, url, {"contents": [{"parts": [{"text": "hi"}]}]}, headers={})
    assert status == 200 and isinstance(chunks, list) and len(chunks) == 2


async def test_stream_cut_after(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    sim.config.stream_cut_after = 1
    url = f"{sim.base_url}/v1beta/models/{FLASH}:streamGenerateContent?alt=sse"
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(
            url, json={"contents": [{"parts": [{"text": "a b c"}]}]}, headers=KEY_HEADER
        ) as resp:
            await resp.read()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"contents": []}, "contents is not specified"),
        ({}, "contents is not specified"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents.parts must not be empty"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
        ({"contents": [{"parts": [{"text": "x"}]}], "temperature": 1}, 'Unknown name "temperature"'),
        (
            {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"max_tokens": 5}},
            "Unknown name \"max_tokens\" at 'generation_config'",
        ),
        ({"contents": [{"parts": [{"text": "x", "type": "text"}]}]}, 'Unknown name "type"'),
        ({"contents": [{"parts": [{"text": "x", "inlineData": {}}]}]}, "oneof field 'data'"),
        ({"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}, "function call turns"),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "%%%"}}]}]},
            "Base64 decoding failed",
        ),
    ],
)
async def test_validation(sim: GeminiSim, http: aiohttp.ClientSession, body: Any, message: str) -> None:
    status, error = await _post(http, f"{sim.base_url}/v1beta/models/{FLASH}:generateContent", body)
    assert status == 400
    assert error["error"]["status"] == "INVALID_ARGUMENT"
    assert message in error["error"]["message"]


async def test_auth_by_query_key_and_missing_key(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    url = f"{sim.base_url}/v1beta/models/{FLASH}:generateContent"
    assert (await _post(http, f"{url}?key={DEFAULT_API_KEY}", body, headers={}))[0] == 200
    status, error = await _post(http, url, body, headers={})
    assert (status, error["error"]["status"]) == (403, "PERMISSION_DENIED")


async def test_injected_429_carries_retry_info(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    sim.config.fail_next = [
        429,
        {"status": 400, "reason": "API_KEY_EXPIRED"},
        {"status": 418, "body": {"x": 1}},
    ]
    url = f"{sim.base_url}/v1beta/models/{FLASH}:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    status, error = await _post(http, url, body)
    assert status == 429
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"} in error["error"][
        "details"
    ]
    status, error = await _post(http, url, body)
    assert (status, error["error"]["details"][0]["reason"]) == (400, "API_KEY_EXPIRED")
    assert await _post(http, url, body) == (418, {"x": 1})


async def test_vertex_path_with_bearer_tokens(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    url = f"{sim.vertex_base_url()}/{FLASH}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    status, answer = await _post(http, url, body, headers={"Authorization": f"Bearer {DEFAULT_VERTEX_TOKEN}"})
    assert status == 200 and answer["candidates"][0]["content"]["parts"][-1]["text"] == "Echo: hi"
    status, error = await _post(http, url, body, headers={"Authorization": "Bearer expired"})
    assert (status, error["error"]["status"]) == (401, "UNAUTHENTICATED")
    status, error = await _post(
        http,
        url,
        {"contents": [{"parts": [{"text": "hi"}]}]},
        headers={"Authorization": f"Bearer {DEFAULT_VERTEX_TOKEN}"},
    )
    assert (status, error["error"]["message"]) == (400, "Please use a valid role: user, model.")
    status, error = await _post(
        http,
        f"{sim.vertex_base_url()}/nope:generateContent",
        body,
        headers={"Authorization": f"Bearer {DEFAULT_VERTEX_TOKEN}"},
    )
    assert status == 404 and "Publisher Model" in error["error"]["message"]


async def test_control_api(sim: GeminiSim, http: aiohttp.ClientSession) -> None:
    async with http.post(
        f"{sim.base_url}/_sim/config", json={"reply": "set remotely", "latency_ms": 1}
    ) as resp:
        assert (await resp.json())["reply"] == "set remotely"
    async with http.post(f"{sim.base_url}/_sim/config", json={"nope": 1}) as resp:
        assert resp.status == 400
    _, answer = await _post(
        http,
        f"{sim.base_url}/v1beta/models/{FLASH}:generateContent",
        {"contents": [{"parts": [{"text": "x"}]}]},
    )
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "set remotely"
    async with http.get(f"{sim.base_url}/_sim/requests") as resp:
        assert len((await resp.json())["requests"]) == 1
    async with http.post(f"{sim.base_url}/_sim/reset") as resp:
        assert (await resp.json())["reply"] is None
    assert sim.requests == []
    async with http.get(f"{sim.base_url}/v1beta/nothing") as resp:
        assert resp.status == 404
