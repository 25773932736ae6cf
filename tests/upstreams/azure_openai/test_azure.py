"""The Azure OpenAI adapter: URL building and error rules, then every call against the simulator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from omnirelay.core.chat import (
    ChatRequest,
    Message,
    StreamFinish,
    StreamUsage,
    TextDelta,
    TextPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolDef,
)
from omnirelay.dialects.openai_chat_convert import OpenAIChatUpstream
from omnirelay.providers.azure_openai.adapter import (
    DEFAULT_API_VERSION,
    AzureOpenAIAdapter,
    chat_url,
    classify,
    split_base_url,
)
from omnirelay.providers.base import Capability, FailureKind, ProviderError
from omnirelay.providers.openai_compat.adapter import iter_sse_events
from omnirelay.providers.registry import adapter_class
from omnirelay.settings import ChannelConfig
from tests.upstreams.azure_openai import DEFAULT_AZURE_KEY, AzureOpenAISim, channel_base_url

DIALECT = OpenAIChatUpstream()
HELLO: list[dict[str, Any]] = [{"role": "user", "content": "hello azure"}]


# ---- pure parts ----------------------------------------------------------------------------------


def test_registered_with_its_identity() -> None:
    assert adapter_class("azure_openai") is AzureOpenAIAdapter
    assert AzureOpenAIAdapter.id == "azure_openai"
    assert AzureOpenAIAdapter.capabilities == frozenset({Capability.CHAT})
    assert AzureOpenAIAdapter.dialect == "openai_chat"


@pytest.mark.parametrize(
    ("base_url", "deployment", "expected"),
    [
        (
            "https://res.openai.azure.com",
            "gpt4o",
            f"https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version={DEFAULT_API_VERSION}",
        ),
        (
            "https://res.openai.azure.com/?api-version=2025-01-01-preview",
            "gpt4o",
            "https://res.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2025-01-01-preview",
        ),
        (
            "https://res.openai.azure.com/openai?api-version=2024-06-01&x=1",
            "my deploy/1",
            "https://res.openai.azure.com/openai/deployments/my%20deploy%2F1/chat/completions?api-version=2024-06-01",
        ),
        (
            "https://res.cognitiveservices.azure.com/openai/v1",
            "gpt4o",
            "https://res.cognitiveservices.azure.com/openai/v1/chat/completions",
        ),
        (
            "https://res.openai.azure.com/openai/v1/?api-version=preview",
            "gpt4o",
            "https://res.openai.azure.com/openai/v1/chat/completions?api-version=preview",
        ),
        (
            "http://127.0.0.1:8080/proxy?api-version=",
            "d",
            f"http://127.0.0.1:8080/proxy/openai/deployments/d/chat/completions?api-version={DEFAULT_API_VERSION}",
        ),
    ],
)
def test_chat_url(base_url: str, deployment: str, expected: str) -> None:
    assert chat_url(base_url, deployment) == expected


def test_split_base_url() -> None:
    assert split_base_url("https://r.openai.azure.com/openai/?api-version=v") == (
        "https://r.openai.azure.com",
        "v",
        False,
    )
    assert split_base_url("https://r.openai.azure.com/openai/v1") == (
        "https://r.openai.azure.com/openai/v1",
        None,
        True,
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, {"error": {"code": "content_filter", "message": "filtered", "status": 400}}, (False, True)),
        (
            400,
            {"error": {"code": None, "innererror": {"code": "ResponsibleAIPolicyViolation"}}},
            (False, True),
        ),
        (404, {"error": {"code": "DeploymentNotFound", "message": "no such deployment"}}, (True, False)),
        (404, {"error": {"code": "404", "message": "Resource not found"}}, (True, False)),
        (400, {"error": {"code": "OperationNotSupported", "message": "embeddings only"}}, (True, False)),
        (429, {"error": {"code": "429", "message": "Requests ... exceeded token rate limit"}}, (True, False)),
        (401, {"error": {"code": "401", "message": "Access denied"}}, (True, False)),
        (401, {"statusCode": 401, "message": "Unauthorized. Access token is missing"}, (True, False)),
        (400, {"error": {"code": "context_length_exceeded", "message": "too long"}}, (False, True)),
        (400, {"error": {"code": "BadRequest", "message": "bad"}}, (False, True)),
        (500, None, (True, False)),
        (503, {"error": {"code": "ServiceUnavailable"}}, (True, False)),
    ],
)
def test_classify(status: int, body: dict[str, Any] | None, expected: tuple[bool, bool]) -> None:
    assert classify(status, body) == expected


# ---- against the simulator -----------------------------------------------------------------------


@pytest.fixture
async def sim() -> AsyncIterator[AzureOpenAISim]:
    async with AzureOpenAISim() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _adapter(http: aiohttp.ClientSession, base_url: str) -> AzureOpenAIAdapter:
    channel = ChannelConfig(
        name="azure-test",
        provider="azure_openai",
        base_url=base_url,
        api_key=DEFAULT_AZURE_KEY,
        models={"gpt-4o-mini": "chat-deploy", "sim-reasoner": "reasoner-deploy"},
    )
    adapter: AzureOpenAIAdapter = adapter_class("azure_openai")(channel, http)
    return adapter


def _body(model: str = "gpt-4o-mini", **fields: Any) -> bytes:
    return orjson.dumps({"model": model, "messages": HELLO, **fields})


async def _failure(adapter: AzureOpenAIAdapter, deployment: str = "chat-deploy") -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_body(), DEFAULT_AZURE_KEY, 5.0, upstream_model=deployment)
    return info.value


async def test_chat_posts_to_the_deployment_with_an_api_key(
    sim: AzureOpenAISim, http: aiohttp.ClientSession
) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    reply = await adapter.chat(_body(), DEFAULT_AZURE_KEY, 5.0, upstream_model="chat-deploy")
    assert reply.status == 200 and reply.content_type.startswith("application/json")
    sent = sim.azure_requests[-1]
    assert sent.path == "/openai/deployments/chat-deploy/chat/completions"
    assert sent.query == {"api-version": DEFAULT_API_VERSION}
    assert sent.headers["api-key"] == DEFAULT_AZURE_KEY and "authorization" not in sent.headers
    assert sent.body == _body()  # the body goes through untouched
    data = orjson.loads(reply.body)
    assert data["prompt_filter_results"][0]["prompt_index"] == 0
    response = DIALECT.from_body(data)
    assert response.parts == [TextPart("Echo: hello azure")]
    assert response.model == "gpt-4o-mini" and response.usage.output == 3


async def test_api_version_from_the_base_url(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, channel_base_url(sim, "2025-01-01-preview"))
    await adapter.chat(_body(), DEFAULT_AZURE_KEY, 5.0, upstream_model="chat-deploy")
    assert sim.azure_requests[-1].query == {"api-version": "2025-01-01-preview"}
    assert adapter.chat_url("chat-deploy") is adapter.chat_url("chat-deploy")  # cached


async def test_deployment_falls_back_to_the_body_model(
    sim: AzureOpenAISim, http: aiohttp.ClientSession
) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    await adapter.chat(_body("chat-deploy"), DEFAULT_AZURE_KEY, 5.0)
    assert sim.azure_requests[-1].path == "/openai/deployments/chat-deploy/chat/completions"
    with pytest.raises(ValueError, match="deployment name"):
        await adapter.chat(b"{}", DEFAULT_AZURE_KEY, 5.0)


async def test_v1_api(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, sim.root_url + "/openai/v1")
    reply = await adapter.chat(_body("chat-deploy"), DEFAULT_AZURE_KEY, 5.0, upstream_model="chat-deploy")
    assert reply.status == 200
    sent = sim.azure_requests[-1]
    assert sent.path == "/openai/v1/chat/completions" and sent.query == {}


async def test_stream_through_the_dialect_parser(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=[Message("user", [TextPart("call all tools")])],
        tools=[
            ToolDef(
                "get_weather",
                None,
                {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            ),
            ToolDef("get_time", None, {"type": "object"}),
        ],
        stream=True,
    )
    body = orjson.dumps(DIALECT.to_body(request, upstream_model="chat-deploy"))
    resp = await adapter.open_stream(body, DEFAULT_AZURE_KEY, 5.0, upstream_model="chat-deploy")
    parser = DIALECT.stream_parser()
    events = []
    try:
        async for group in iter_sse_events(resp):
            for event in group:
                events.extend(parser.feed(event))
    finally:
        resp.release()
    assert parser.done and parser.usage is not None and parser.usage.output > 0
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.name) for s in starts] == [(0, "get_weather"), (1, "get_time")]
    arguments = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == 0)
    assert orjson.loads(arguments) == {"city": "placeholder"}
    assert StreamFinish("tool_calls") in events
    assert isinstance(events[-1], StreamUsage)
    assert sim.azure_requests[-1].headers["accept"] == "text/event-stream"


async def test_stream_text(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    body = _body(stream=True, stream_options={"include_usage": True})
    resp = await adapter.open_stream(body, DEFAULT_AZURE_KEY, 5.0, upstream_model="reasoner-deploy")
    parser = DIALECT.stream_parser()
    text: list[str] = []
    async for group in iter_sse_events(resp):
        for event in group:
            text.extend(e.text for e in parser.feed(event) if isinstance(e, TextDelta))
    resp.release()
    assert "".join(text) == "Echo: hello azure"
    assert parser.usage is not None and parser.usage.reasoning > 0


async def test_non_stream_tool_call_reply(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    body = _body(tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])
    reply = await adapter.chat(body, DEFAULT_AZURE_KEY, 5.0, upstream_model="chat-deploy")
    response = DIALECT.from_body(orjson.loads(reply.body))
    assert [p.name for p in response.parts if isinstance(p, ToolCallPart)] == ["f"]
    assert response.finish_reason == "tool_calls"


async def test_wrong_key(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_body(), "wrong-key", 5.0, upstream_model="chat-deploy")
    exc = info.value
    assert (exc.kind, exc.status, exc.retryable, exc.client_fault) == (FailureKind.HTTP, 401, True, False)
    assert exc.message.startswith("Access denied")


async def test_unknown_deployment_is_the_channels_fault(
    sim: AzureOpenAISim, http: aiohttp.ClientSession
) -> None:
    exc = await _failure(_adapter(http, channel_base_url(sim)), "no-such-deployment")
    assert (exc.status, exc.retryable, exc.client_fault) == (404, True, False)
    assert exc.body is not None and exc.body["error"]["code"] == "DeploymentNotFound"


async def test_unknown_api_version_is_the_channels_fault(
    sim: AzureOpenAISim, http: aiohttp.ClientSession
) -> None:
    exc = await _failure(_adapter(http, channel_base_url(sim, "1999-01-01")))
    assert (exc.status, exc.retryable, exc.client_fault, exc.message) == (
        404,
        True,
        False,
        "Resource not found",
    )


async def test_content_filter_is_the_clients_fault(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    sim.blocked_words.add("azure")
    exc = await _failure(_adapter(http, channel_base_url(sim)))
    assert (exc.kind, exc.status, exc.retryable, exc.client_fault) == (FailureKind.HTTP, 400, False, True)
    assert exc.body is not None and exc.body["error"]["code"] == "content_filter"
    assert exc.body["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"


async def test_content_filter_on_a_stream(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    sim.blocked_words.add("hello")
    adapter = _adapter(http, channel_base_url(sim))
    with pytest.raises(ProviderError) as info:
        await adapter.open_stream(_body(stream=True), DEFAULT_AZURE_KEY, 5.0, upstream_model="chat-deploy")
    assert info.value.client_fault and not info.value.retryable


@pytest.mark.parametrize(
    ("status", "retryable", "client_fault"), [(429, True, False), (500, True, False), (400, False, True)]
)
async def test_injected_failures(
    sim: AzureOpenAISim, http: aiohttp.ClientSession, status: int, retryable: bool, client_fault: bool
) -> None:
    sim.config.fail_next = [status]
    sim.config.retry_after_s = 7
    exc = await _failure(_adapter(http, channel_base_url(sim)))
    assert (exc.status, exc.retryable, exc.client_fault) == (status, retryable, client_fault)
    if status == 429:
        assert exc.headers["retry-after"] == "7"


async def test_dropped_connection_and_timeout(sim: AzureOpenAISim, http: aiohttp.ClientSession) -> None:
    adapter = _adapter(http, channel_base_url(sim))
    sim.config.drop_connection_next = 1
    exc = await _failure(adapter)
    assert exc.kind is FailureKind.CONNECT and exc.retryable
    sim.config.latency_ms = 200
    with pytest.raises(ProviderError) as info:
        await adapter.chat(_body(), DEFAULT_AZURE_KEY, 0.05, upstream_model="chat-deploy")
    assert info.value.kind is FailureKind.TIMEOUT and info.value.retryable
