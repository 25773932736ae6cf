"""The real gateway, driven by the official openai SDK, against the OpenAI simulator."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionToolParam
from pydantic import BaseModel

from tests.conftest import TEST_MODELS, GatewayFactory, sim_channel
from tests.support.server import GatewayServer
from tests.upstreams.openai import OpenAISim

# gpt-4o-mini in the shipped catalog: 0.15 / 0.60 USD per 1M tokens, cached input 0.075.
MINI_IN, MINI_OUT = Decimal("0.15"), Decimal("0.60")


@pytest.fixture
def server(gateway_factory: GatewayFactory, sim: OpenAISim) -> GatewayServer:
    return gateway_factory([sim_channel(sim)], models=TEST_MODELS)


def client_for(server: GatewayServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)


def balance(server: GatewayServer, account_id: int) -> Decimal:
    return Decimal(server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"])


def cost(prompt: int, completion: int, cached: int = 0) -> Decimal:
    """Expected cost in USD, rounded up to a whole nano-USD per part, as the gateway bills."""
    nano = Decimal("1e-9")

    def part(tokens: int, price: Decimal) -> Decimal:
        return (tokens * price / 1_000_000).quantize(nano, rounding="ROUND_CEILING")

    return part(prompt - cached, MINI_IN) + part(cached, Decimal("0.075")) + part(completion, MINI_OUT)


def test_non_streaming_round_trip_and_billing(server: GatewayServer, sim: OpenAISim) -> None:
    account_id, key = server.account_key("10", allow_manage_key=True)
    raw = client_for(server, key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Echo: hello there"
    request_id = raw.headers["request-id"]
    assert len(request_id) == 24
    usage = completion.usage
    assert usage is not None
    expected = cost(usage.prompt_tokens, usage.completion_tokens)
    assert balance(server, account_id) == Decimal("10") - expected
    # The upstream saw the channel's key, never the client's.
    assert sim.chat_requests[-1].headers["authorization"] == "Bearer sk-upstream-test"
    record = httpx.get(
        f"{server.base_url}/dashboard/record/{request_id}", headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert record["code"] == 0
    assert record["data"]["input_token"] == usage.prompt_tokens
    assert record["data"]["output_token"] == usage.completion_tokens
    assert Decimal(str(record["data"]["cost"])) == expected
    assert record["data"]["model"] == "gpt-4o-mini"


def test_every_client_field_reaches_the_upstream(server: GatewayServer, sim: OpenAISim) -> None:
    _, key = server.account_key()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
        ],
        "tools": tools,
        "tool_choice": "auto",
        "logprobs": True,
        "top_logprobs": 2,
        "seed": 7,
        "temperature": 0.2,
        "reasoning_effort": "low",
        "vendor_extra": {"nested": [1, 2, 3]},
    }
    resp = httpx.post(
        f"{server.base_url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 200, resp.text
    assert sim.chat_requests[-1].json == body
    data = resp.json()
    assert data["choices"][0]["finish_reason"] == "tool_calls"
    assert data["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert data["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


def test_model_map_rewrites_only_the_model(gateway_factory: GatewayFactory, sim: OpenAISim) -> None:
    server = gateway_factory(
        [sim_channel(sim, models={"my-mini": "gpt-4o-mini"})],
        models=[{"id": "my-mini", "price": {"input": "0.15", "output": "0.60"}}],
    )
    _, key = server.account_key()
    body = {"model": "my-mini", "messages": [{"role": "user", "content": "hi"}], "n": 2}
    resp = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, headers={"x-api-key": key})
    assert resp.status_code == 200, resp.text
    assert sim.chat_requests[-1].json == {**body, "model": "gpt-4o-mini"}
    assert len(resp.json()["choices"]) == 2


class Weather(BaseModel):
    city: str
    degrees: int


def test_structured_output_with_the_sdk_parser(server: GatewayServer) -> None:
    _, key = server.account_key()
    parsed = client_for(server, key).chat.completions.parse(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather"}], response_format=Weather
    )
    result = parsed.choices[0].message.parsed
    assert isinstance(result, Weather)


def test_reasoning_content_reaches_the_client(server: GatewayServer) -> None:
    _, key = server.account_key()
    resp = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": "sim-reasoner", "messages": [{"role": "user", "content": "think"}]},
        headers={"Authorization": f"Bearer {key}"},
    )
    message = resp.json()["choices"][0]["message"]
    assert message["reasoning_content"]
    assert resp.json()["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0


def test_stream_with_usage_requested(server: GatewayServer, sim: OpenAISim) -> None:
    account_id, key = server.account_key("10")
    stream = client_for(server, key).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "stream me please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: stream me please"
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None
    assert balance(server, account_id) == Decimal("10") - cost(usage.prompt_tokens, usage.completion_tokens)


def test_stream_without_usage_asks_upstream_but_hides_the_usage_chunk(
    server: GatewayServer, sim: OpenAISim
) -> None:
    account_id, key = server.account_key("10")
    with httpx.stream(
        "POST",
        f"{server.base_url}/v1/chat/completions",
        json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "a b c"}], "stream": True},
        headers={"Authorization": f"Bearer {key}"},
    ) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert "request-id" in resp.headers
        raw = resp.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)
    payloads = [json.loads(e[6:]) for e in events[:-1]]
    assert all(p["choices"] for p in payloads), "the usage-only chunk must not reach this client"
    assert sim.chat_requests[-1].json["stream_options"] == {"include_usage": True}
    # Billed from the upstream's usage all the same: prompt 3 words + 3 = 6, reply "Echo: a b c" = 4.
    assert balance(server, account_id) == Decimal("10") - cost(6, 4)


def test_stream_tool_calls_keep_their_indices(server: GatewayServer) -> None:
    _, key = server.account_key()
    tools: list[ChatCompletionToolParam] = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object", "properties": {}}}}
        for n in ("alpha", "beta", "gamma")
    ]
    stream = client_for(server, key).chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "call all tools"}],
        tools=tools,
        stream=True,
    )
    names: dict[int, str] = {}
    args: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            for call in choice.delta.tool_calls or []:
                if call.function and call.function.name:
                    names[call.index] = call.function.name
                if call.function and call.function.arguments:
                    args[call.index] = args.get(call.index, "") + call.function.arguments
    assert names == {0: "alpha", 1: "beta", 2: "gamma"}
    assert all(json.loads(args.get(i, "{}")) == {} for i in names)


async def test_async_client_streaming(server: GatewayServer) -> None:
    _, key = server.account_key()
    client = openai.AsyncOpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    stream = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "async hello"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Echo: async hello"
    completion = await client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "async plain"}]
    )
    assert completion.choices[0].message.content == "Echo: async plain"
    await client.close()


def test_stream_without_upstream_usage_is_counted_locally(server: GatewayServer, sim: OpenAISim) -> None:
    sim.config.omit_stream_usage = True
    account_id, key = server.account_key("10", allow_manage_key=True)
    stream = client_for(server, key).chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "count me"}], stream=True
    )
    request_id = stream.headers["request-id"]
    assert "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices) == "Echo: count me"
    record = httpx.get(
        f"{server.base_url}/dashboard/record/{request_id}", headers={"Authorization": f"Bearer {key}"}
    ).json()["data"]
    assert record["estimated_tokens"] is True
    assert record["output_token"] > 0 and record["input_token"] > 0
    assert balance(server, account_id) < Decimal("10")


def test_upstream_cut_mid_stream_gives_an_error_event(server: GatewayServer, sim: OpenAISim) -> None:
    sim.config.stream_cut_after = 2
    _, key = server.account_key()
    stream = client_for(server, key).chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "one two three four five"}], stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
