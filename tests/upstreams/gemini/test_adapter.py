"""GeminiAdapter and VertexGeminiAdapter against the Gemini simulator, with the Gemini dialect."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from google import genai
from google.genai import types

from omnirelay.core.chat import (
    ChatRequest,
    Message,
    StreamEvent,
    StreamFinish,
    TextDelta,
    TextPart,
    ToolCallPart,
    ToolDef,
    ToolResultPart,
)
from omnirelay.dialects.gemini import GeminiInbound, GeminiUpstream
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.gemini.adapter import GeminiAdapter, model_path
from omnirelay.providers.gemini.errors import classify_google, http_error, retry_after
from omnirelay.providers.gemini.vertex import VertexGeminiAdapter
from omnirelay.providers.openai_compat.adapter import iter_sse_events
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.gemini import DEFAULT_API_KEY, DEFAULT_VERTEX_TOKEN, GeminiSim, signature_for

FLASH = "gemini-2.5-flash"
UPSTREAM = GeminiUpstream()


@pytest.fixture
async def sim() -> AsyncIterator[GeminiSim]:
    async with GeminiSim() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def adapter(sim: GeminiSim, http: aiohttp.ClientSession) -> GeminiAdapter:
    channel = ChannelConfig(
        name="gemini-sim", provider="gemini", base_url=sim.base_url, api_key=DEFAULT_API_KEY
    )
    return GeminiAdapter(channel, http)


@pytest.fixture
def vertex(sim: GeminiSim, http: aiohttp.ClientSession) -> VertexGeminiAdapter:
    channel = ChannelConfig(
        name="vertex-sim",
        provider="vertex_gemini",
        base_url=sim.vertex_base_url(),
        api_key=DEFAULT_VERTEX_TOKEN,
    )
    return VertexGeminiAdapter(channel, http)


def _body(text: str = "hello world", **fields: Any) -> bytes:
    request = ChatRequest(model="public", messages=[Message("user", [TextPart(text)])], **fields)
    return orjson.dumps(UPSTREAM.to_body(request, upstream_model=FLASH))


async def _stream_events(resp: aiohttp.ClientResponse) -> tuple[list[StreamEvent], Any]:
    parser = UPSTREAM.stream_parser()
    events: list[StreamEvent] = []
    try:
        async for group in iter_sse_events(resp):
            for event in group:
                events += parser.feed(event)
    finally:
        resp.release()
    return events, parser


def test_registry_and_class_attributes() -> None:
    assert adapter_class("gemini") is GeminiAdapter
    assert adapter_class("vertex_gemini") is VertexGeminiAdapter
    for cls in (GeminiAdapter, VertexGeminiAdapter):
        assert cls.capabilities == frozenset({Capability.CHAT})
        assert cls.dialect == "gemini"
    assert (GeminiAdapter.id, VertexGeminiAdapter.id) == ("gemini", "vertex_gemini")


async def test_chat(sim: GeminiSim, adapter: GeminiAdapter) -> None:
    reply = await adapter.chat(_body(), DEFAULT_API_KEY, 10, upstream_model=FLASH, headers={"x-client": "1"})
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    response = UPSTREAM.from_body(orjson.loads(reply.body))
    assert response.parts == [TextPart("Echo: hello world")]
    assert response.finish_reason == "stop"
    assert (response.usage.input_uncached, response.usage.output, response.usage.reasoning) == (5, 3 + 6, 6)
    recorded = sim.requests[-1]
    assert recorded.path == f"/v1beta/models/{FLASH}:generateContent"
    assert recorded.headers["x-goog-api-key"] == DEFAULT_API_KEY
    assert recorded.headers["accept"] == "application/json"
    assert "x-client" not in recorded.headers
    assert recorded.query == {}
    assert DEFAULT_API_KEY not in recorded.path


async def test_stream(sim: GeminiSim, adapter: GeminiAdapter) -> None:
    sim.config.cached_tokens = 2
    resp = await adapter.open_stream(_body("a b"), DEFAULT_API_KEY, 10, upstream_model=FLASH)
    assert resp.status == 200
    events, parser = await _stream_events(resp)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Echo: a b"
    assert events[-2] == StreamFinish("stop")
    assert parser.done
    assert parser.usage.input_cache_read == 2 and parser.usage.input_uncached == 5
    recorded = sim.requests[-1]
    assert recorded.path == f"/v1beta/models/{FLASH}:streamGenerateContent"
    assert recorded.query == {"alt": "sse"}
    assert recorded.headers["accept"] == "text/event-stream"


async def test_stream_function_calls_and_a_cut_stream(sim: GeminiSim, adapter: GeminiAdapter) -> None:
    tools = [
        ToolDef("f", None, {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]})
    ]
    resp = await adapter.open_stream(_body("call", tools=tools), DEFAULT_API_KEY, 10, upstream_model=FLASH)
    events, parser = await _stream_events(resp)
    assert StreamFinish("tool_calls") in events and parser.done
    sim.config.stream_cut_after = 1
    resp = await adapter.open_stream(_body("a b c"), DEFAULT_API_KEY, 10, upstream_model=FLASH)
    with pytest.raises(aiohttp.ClientPayloadError):
        await _stream_events(resp)


async def test_translated_tool_history_reaches_gemini_3(sim: GeminiSim, adapter: GeminiAdapter) -> None:
    """History from another model has no signatures; the placeholder lets Gemini 3 accept it."""
    request = ChatRequest(
        model="public",
        messages=[
            Message("user", [TextPart("weather")]),
            Message("assistant", [ToolCallPart("call_abc", "get_weather", '{"city":"Paris"}')]),
            Message("user", [ToolResultPart("call_abc", [TextPart("sunny")])]),
        ],
        tools=[ToolDef("get_weather", None, {"type": "object"})],
    )
    body = orjson.dumps(UPSTREAM.to_body(request, upstream_model="gemini-3-pro-preview"))
    reply = await adapter.chat(body, DEFAULT_API_KEY, 10, upstream_model="gemini-3-pro-preview")
    assert UPSTREAM.from_body(orjson.loads(reply.body)).parts[-1] == TextPart("Echo: weather")


@pytest.mark.parametrize(
    ("setup", "status", "retryable", "client_fault"),
    [
        ({"api_key": "AIza-wrong"}, 400, True, False),  # API_KEY_INVALID: the channel's problem
        ({"api_key": ""}, 403, True, False),  # PERMISSION_DENIED
        ({"model": "gemini-9"}, 404, False, True),  # NOT_FOUND model: the client's
        ({"body": b'{"contents":[]}'}, 400, False, True),  # INVALID_ARGUMENT
        ({"fail": 429}, 429, True, False),
        ({"fail": 500}, 500, True, False),
        ({"fail": 503}, 503, True, False),
        ({"fail": 504}, 504, True, False),
        (
            {"fail": {"status": 400, "body": {"error": {"code": 400, "status": "FAILED_PRECONDITION"}}}},
            400,
            False,
            True,
        ),
        ({"fail": {"status": 400, "reason": "API_KEY_EXPIRED"}}, 400, True, False),
        ({"fail": {"status": 401}}, 401, True, False),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_error_classification(
    sim: GeminiSim,
    adapter: GeminiAdapter,
    setup: dict[str, Any],
    status: int,
    retryable: bool,
    client_fault: bool,
    stream: bool,
) -> None:
    if "fail" in setup:
        sim.config.fail_next = [setup["fail"]]
    call = adapter.open_stream if stream else adapter.chat
    with pytest.raises(ProviderError) as info:
        await call(
            setup.get("body", _body()),
            setup.get("api_key", DEFAULT_API_KEY),
            10,
            upstream_model=setup.get("model", FLASH),
        )
    error = info.value
    assert (error.kind, error.status, error.retryable, error.client_fault) == (
        FailureKind.HTTP,
        status,
        retryable,
        client_fault,
    )
    assert error.body is not None and "error" in error.body


async def test_rate_limit_retry_after_comes_from_retry_info(sim: GeminiSim, adapter: GeminiAdapter) -> None:
    sim.config.fail_next = [429]
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_body(), DEFAULT_API_KEY, 10, upstream_model=FLASH)
    assert info.value.headers == {"retry-after": "7"}
    assert "exceeded your current quota" in info.value.message


async def test_timeout_and_dropped_connection(sim: GeminiSim, adapter: GeminiAdapter) -> None:
    sim.config.latency_ms = 400
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_body(), DEFAULT_API_KEY, 0.1, upstream_model=FLASH)
    assert (info.value.kind, info.value.retryable) == (FailureKind.TIMEOUT, True)
    with pytest.raises(ProviderError) as info:
        await adapter.open_stream(_body(), DEFAULT_API_KEY, 0.1, upstream_model=FLASH)
    assert info.value.kind is FailureKind.TIMEOUT
    sim.config.latency_ms = 0
    sim.config.drop_connection_next = 1
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_body(), DEFAULT_API_KEY, 10, upstream_model=FLASH)
    assert (info.value.kind, info.value.retryable) == (FailureKind.CONNECT, True)


async def test_upstream_model_is_required(adapter: GeminiAdapter, vertex: VertexGeminiAdapter) -> None:
    for target in (adapter, vertex):
        with pytest.raises(ValueError, match="upstream_model"):
            await target.chat(_body(), DEFAULT_API_KEY, 10)


def test_model_path() -> None:
    assert model_path("gemini-2.5-flash") == "models/gemini-2.5-flash"
    assert model_path("tunedModels/my-model") == "tunedModels/my-model"
    assert model_path("odd name") == "models/odd%20name"


async def test_vertex_chat_stream_and_bad_token(sim: GeminiSim, vertex: VertexGeminiAdapter) -> None:
    reply = await vertex.chat(_body(), DEFAULT_VERTEX_TOKEN, 10, upstream_model=FLASH)
    assert UPSTREAM.from_body(orjson.loads(reply.body)).parts == [TextPart("Echo: hello world")]
    recorded = sim.requests[-1]
    assert recorded.path == (
        f"/v1/projects/sim-project/locations/us-central1/publishers/google/models/{FLASH}:generateContent"
    )
    assert recorded.headers["authorization"] == f"Bearer {DEFAULT_VERTEX_TOKEN}"
    assert "x-goog-api-key" not in recorded.headers
    resp = await vertex.open_stream(_body(), DEFAULT_VERTEX_TOKEN, 10, upstream_model=FLASH)
    _, parser = await _stream_events(resp)
    assert parser.done and sim.requests[-1].query == {"alt": "sse"}
    with pytest.raises(ProviderError) as info:
        await vertex.chat(_body(), "ya29.expired", 10, upstream_model=FLASH)
    assert (info.value.status, info.value.retryable, info.value.client_fault) == (401, True, False)


# ---- errors.py tables --------------------------------------------------------------------------


def test_classify_google_tables() -> None:
    def body(status: str, reason: str | None = None) -> Any:
        error: dict[str, Any] = {"code": 400, "message": "m", "status": status}
        if reason:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
        return {"error": error}

    assert classify_google(400, body("INVALID_ARGUMENT")) == (False, True)
    assert classify_google(400, body("INVALID_ARGUMENT", "API_KEY_INVALID")) == (True, False)
    assert classify_google(400, body("OUT_OF_RANGE")) == (False, True)
    assert classify_google(404, body("NOT_FOUND")) == (False, True)
    assert classify_google(403, body("PERMISSION_DENIED")) == (True, False)
    assert classify_google(429, body("RESOURCE_EXHAUSTED")) == (True, False)
    assert classify_google(500, body("INTERNAL")) == (True, False)
    assert classify_google(504, body("DEADLINE_EXCEEDED")) == (True, False)
    assert classify_google(503, [body("UNAVAILABLE")]) == (True, False)  # array-wrapped answer
    assert classify_google(502, None) == (True, False)  # no body: the shared HTTP rules
    assert classify_google(422, {"error": {"status": "SOMETHING_NEW"}}) == (False, True)


def test_retry_after_and_http_error() -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]
    body = [
        {"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED", "details": details}}
    ]
    assert retry_after(body) == "3"
    error = http_error(429, body, {})
    assert (error.message, error.headers, error.body) == ("slow down", {"retry-after": "3"}, body[0])
    assert http_error(429, body, {"retry-after": "9"}).headers == {"retry-after": "9"}
    assert http_error(500, b"not json", {}).message == "upstream answered HTTP 500"


# ---- the whole loop: SDK -> GeminiInbound -> canonical -> GeminiUpstream -> adapter -> sim ---------


@pytest.fixture
async def relay(adapter: GeminiAdapter) -> AsyncIterator[str]:
    """A minimal translating relay (what the chat engine does), so the SDK reads rendered output."""
    inbound = GeminiInbound()

    async def handle(request: web.Request) -> web.StreamResponse:
        model, _, action = request.match_info["target"].partition(":")
        canonical = inbound.parse(await request.json(), model=model)
        body = orjson.dumps(UPSTREAM.to_body(canonical, upstream_model=model))
        if action == "generateContent":
            reply = await adapter.chat(body, DEFAULT_API_KEY, 10, upstream_model=model)
            return web.json_response(
                inbound.render(UPSTREAM.from_body(orjson.loads(reply.body)), model=model)
            )
        renderer = inbound.stream_renderer(model=model, response_id="relay-1", created=0, include_usage=True)
        parser = UPSTREAM.stream_parser()
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        resp = await adapter.open_stream(body, DEFAULT_API_KEY, 10, upstream_model=model)
        try:
            async for group in iter_sse_events(resp):
                for event in group:
                    for canonical_event in parser.feed(event):
                        await out.write(renderer.event(canonical_event))
        finally:
            resp.release()
        await out.write(renderer.close())
        await out.write_eof()
        return out

    app = web.Application()
    for version in ("v1", "v1beta"):
        app.router.add_post(f"/{version}/models/{{target}}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def relay_client(relay: str) -> AsyncIterator[Any]:
    client = genai.Client(api_key="client-key", http_options=types.HttpOptions(base_url=relay))
    async with client.aio as aio:
        yield aio


SDK_WARNING = (
    "ignore:Inheritance class AiohttpClientSession from ClientSession is discouraged:DeprecationWarning"
)


@pytest.mark.filterwarnings(SDK_WARNING)
async def test_loop_generate_content_with_thinking_and_calls(sim: GeminiSim, relay_client: Any) -> None:
    config = types.GenerateContentConfig(
        system_instruction="Be brief.",
        tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name="get_time")])],
        thinking_config=types.ThinkingConfig(include_thoughts=True),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    response = await relay_client.models.generate_content(
        model=FLASH, contents="what time is it", config=config
    )
    thought, call = response.candidates[0].content.parts
    assert thought.thought is True and thought.text == "Thinking about the request: what time is it"
    assert call.function_call.name == "get_time" and call.function_call.id == "call_0"
    assert call.thought_signature is not None
    assert response.usage_metadata.thoughts_token_count == 8
    # the SDK's history goes back through the relay: the signature reaches Gemini on its part
    history = [
        types.Content(role="user", parts=[types.Part.from_text(text="what time is it")]),
        response.candidates[0].content,
        types.Content(
            role="user", parts=[types.Part.from_function_response(name="get_time", response={"t": 9})]
        ),
    ]
    final = await relay_client.models.generate_content(
        model="gemini-3-pro-preview", contents=history, config=config
    )
    assert final.candidates[0].content.parts[-1].text == "Echo: what time is it"
    sent = sim.requests[-1].json["contents"][1]["parts"]
    assert sent == [
        {"text": "Thinking about the request: what time is it", "thought": True},
        {
            "functionCall": {"name": "get_time", "args": {}, "id": "call_0"},
            "thoughtSignature": signature_for("Thinking about the request: what time is it"),
        },
    ]


@pytest.mark.filterwarnings(SDK_WARNING)
async def test_loop_stream(relay_client: Any) -> None:
    chunks = [
        c async for c in await relay_client.models.generate_content_stream(model=FLASH, contents="a b c")
    ]
    assert "".join(c.text or "" for c in chunks) == "Echo: a b c"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 4
    assert chunks[-1].response_id == "relay-1"
    calls = await relay_client.models.generate_content_stream(
        model=FLASH,
        contents="call all tools",
        config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[types.FunctionDeclaration(name=n) for n in ("f", "g")])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    names = [call.name for chunk in [c async for c in calls] for call in chunk.function_calls or []]
    assert names == ["f", "g"]
