"""Every chat format in, every provider out: the official SDKs against the real gateway.

Three upstream simulators (OpenAI-compatible, Anthropic, Gemini) behind one gateway; the public
models `via-openai`, `via-anthropic` and `via-gemini` route to each. The anthropic, google-genai
and openai (Responses) SDKs hold streaming, tool-using, thinking conversations through formats
other than their own, and every call lands in the same ledger through the one settle function.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from tests.conftest import GatewayFactory
from tests.support.server import HTTP, GatewayServer
from tests.upstreams.anthropic.sim import AnthropicSim
from tests.upstreams.anthropic.sim import sim_in_thread as anthropic_sim
from tests.upstreams.gemini.sim import GeminiSim
from tests.upstreams.gemini.sim import sim_in_thread as gemini_sim
from tests.upstreams.openai import OpenAISim

PRICE = {"input": "1", "output": "2"}  # USD per 1M tokens for every public model here
MODELS = ["via-openai", "via-anthropic", "via-gemini"]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def upstreams(sim: OpenAISim) -> Iterator[tuple[OpenAISim, AnthropicSim, GeminiSim]]:
    with anthropic_sim() as claude, gemini_sim() as gem:
        yield sim, claude, gem


@pytest.fixture
def server(
    gateway_factory: GatewayFactory, upstreams: tuple[OpenAISim, AnthropicSim, GeminiSim]
) -> GatewayServer:
    oai, claude, gem = upstreams
    channels: list[dict[str, Any]] = [
        {
            "name": "oai",
            "provider": "openai",
            "base_url": oai.base_url,
            "api_key": "sk-upstream-test",
            "models": {"via-openai": "sim-reasoner", "gpt-4o-mini": "gpt-4o-mini"},
        },
        {
            "name": "claude",
            "provider": "anthropic",
            "base_url": claude.base_url,
            "api_key": next(iter(claude.api_keys)),
            "models": {"via-anthropic": "claude-sonnet-4-5"},
        },
        {
            "name": "gem",
            "provider": "gemini",
            "base_url": gem.base_url,
            "api_key": next(iter(gem.api_keys)),
            "models": {"via-gemini": "gemini-2.5-flash"},
        },
    ]
    return gateway_factory(channels, models=[{"id": m, "price": PRICE} for m in MODELS])


def record(server: GatewayServer, key: str, request_id: str) -> dict[str, Any]:
    resp = HTTP.get(
        f"{server.base_url}/dashboard/record/{request_id}", headers={"Authorization": f"Bearer {key}"}
    )
    data: dict[str, Any] = resp.json()["data"]
    return data


def expected_cost(rec: dict[str, Any]) -> Decimal:
    nano = Decimal("1e-9")
    inp = (Decimal(rec["input_token"]) * 1 / 1_000_000).quantize(nano, rounding="ROUND_CEILING")
    out = (Decimal(rec["output_token"]) * 2 / 1_000_000).quantize(nano, rounding="ROUND_CEILING")
    return inp + out


def assert_billed(server: GatewayServer, key: str, request_id: str, endpoint: str) -> None:
    rec = record(server, key, request_id)
    assert rec["endpoint"] == endpoint and rec["status"] == "ok", rec
    assert rec["input_token"] > 0 and rec["output_token"] > 0
    assert Decimal(str(rec["cost"])) == expected_cost(rec)


# --- Anthropic SDK -----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_anthropic_sdk_streaming_tools_and_thinking(server: GatewayServer, model: str) -> None:
    _, key = server.account_key("10", allow_manage_key=True)
    client = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
    tools: list[Any] = [
        {
            "name": WEATHER["name"],
            "description": WEATHER["description"],
            "input_schema": WEATHER["parameters"],
        }
    ]
    # Turn 1: a plain streamed answer, with thinking where the upstream reasons.
    with client.messages.stream(
        model=model,
        max_tokens=2048,
        messages=[{"role": "user", "content": "hello there"}],
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert "hello there" in text
    assert final.stop_reason == "end_turn"
    thinking = [b for b in final.content if b.type == "thinking"]
    assert thinking and thinking[0].thinking, f"{model}: the upstream's reasoning arrives as a thinking block"
    if model == "via-anthropic":
        assert thinking[0].signature, "a signature survives the pass-through"
    assert final.usage.output_tokens > 0
    # Turn 2: tools; the call comes back as tool_use and the result goes back through the upstream.
    first = client.messages.create(
        model=model, max_tokens=1024, tools=tools, messages=[{"role": "user", "content": "weather in Paris?"}]
    )
    calls = [b for b in first.content if b.type == "tool_use"]
    assert first.stop_reason == "tool_use" and calls and calls[0].name == "get_weather"
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "sunny, 21C"}],
        },
    ]
    with client.messages.stream(model=model, max_tokens=1024, tools=tools, messages=history) as stream:
        answer = stream.get_final_message()
    assert answer.content and answer.stop_reason in ("end_turn", "tool_use")
    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=256, messages=[{"role": "user", "content": "count me"}]
    )
    assert_billed(server, key, raw.headers["request-id"], "/v1/messages")


def test_anthropic_sdk_several_streamed_tool_calls(server: GatewayServer) -> None:
    _, key = server.account_key()
    client = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
    tools: list[Any] = [
        {"name": n, "description": n, "input_schema": {"type": "object", "properties": {}}}
        for n in ("alpha", "beta")
    ]
    for model in ("via-openai", "via-gemini"):
        with client.messages.stream(
            model=model, max_tokens=512, tools=tools, messages=[{"role": "user", "content": "call all tools"}]
        ) as stream:
            final = stream.get_final_message()
        names = [b.name for b in final.content if b.type == "tool_use"]
        assert names == ["alpha", "beta"], (model, final.content)


def test_anthropic_count_tokens_and_errors(server: GatewayServer) -> None:
    _, key = server.account_key()
    client = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
    counted = client.messages.count_tokens(
        model="via-openai", messages=[{"role": "user", "content": "hello world"}]
    )
    assert counted.input_tokens > 0
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(model="no-model", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.BadRequestError) as info:
        HTTP_body = {"model": "via-openai", "messages": [{"role": "user", "content": "x"}]}
        client.post("/v1/messages", cast_to=object, body=HTTP_body)
    assert "max_tokens" in str(info.value)
    bad = anthropic.Anthropic(api_key="sk-wrong", base_url=server.base_url, max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="via-openai", max_tokens=5, messages=[{"role": "user", "content": "x"}])


# --- google-genai SDK --------------------------------------------------------------------------------


def genai_client(server: GatewayServer, key: str) -> genai.Client:
    return genai.Client(
        api_key=key, http_options=types.HttpOptions(base_url=server.base_url, api_version="v1beta")
    )


@pytest.mark.parametrize("model", MODELS)
def test_genai_sdk_streaming_and_function_calling(server: GatewayServer, model: str) -> None:
    _, key = server.account_key("10", allow_manage_key=True)
    client = genai_client(server, key)
    chunks = list(client.models.generate_content_stream(model=model, contents="hello from gemini"))
    text = "".join(c.text or "" for c in chunks)
    assert "hello from gemini" in text
    assert chunks[-1].usage_metadata and chunks[-1].usage_metadata.total_token_count
    tool = types.Tool(
        function_declarations=[
            types.FunctionDeclaration(
                name="get_weather", description="Weather", parameters_json_schema=WEATHER["parameters"]
            )
        ]
    )
    config = types.GenerateContentConfig(
        tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    first = client.models.generate_content(model=model, contents="weather in Rome?", config=config)
    calls = first.function_calls or []
    assert calls and calls[0].name == "get_weather"
    history = [
        types.Content(role="user", parts=[types.Part(text="weather in Rome?")]),
        first.candidates[0].content if first.candidates else None,
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        name="get_weather", id=calls[0].id, response={"output": "rainy"}
                    )
                )
            ],
        ),
    ]
    second = client.models.generate_content(model=model, contents=[h for h in history if h], config=config)
    assert second.candidates and second.usage_metadata


def test_genai_default_v1_path_and_model_list(server: GatewayServer) -> None:
    _, key = server.account_key()
    client = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=server.base_url))
    result = client.models.generate_content(model="via-anthropic", contents="from the v1 path")
    assert result.text and "from the v1 path" in result.text
    listed = HTTP.get(f"{server.base_url}/v1beta/models", headers={"x-goog-api-key": key}).json()
    assert {m["name"] for m in listed["models"]} >= {f"models/{m}" for m in MODELS}


# --- openai Responses SDK ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_responses_sdk_streaming_and_tools(server: GatewayServer, model: str) -> None:
    _, key = server.account_key("10", allow_manage_key=True)
    client = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    with client.responses.stream(model=model, input="hello responses", instructions="be brief") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "hello responses" in "".join(deltas)
    assert final.output_text and final.usage and final.usage.output_tokens > 0
    tools: list[Any] = [{"type": "function", **WEATHER, "strict": False}]
    first = client.responses.create(model=model, input="weather in Oslo?", tools=tools)
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    replay: list[Any] = [
        {"role": "user", "content": "weather in Oslo?"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": json.dumps({"sky": "clear"})},
    ]
    follow = client.responses.with_raw_response.create(
        model=model,
        tools=tools,
        input=replay,
    )
    assert follow.parse().output
    assert_billed(server, key, follow.headers["request-id"], "/v1/responses")


def test_responses_previous_response_id_is_refused(server: GatewayServer) -> None:
    _, key = server.account_key()
    client = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as info:
        client.responses.create(model="via-openai", input="x", previous_response_id="resp_123")
    assert "previous_response_id" in str(info.value)


# --- one ledger ----------------------------------------------------------------------------------------


def test_every_format_lands_in_the_same_ledger(server: GatewayServer) -> None:
    account_id, key = server.account_key("10", allow_manage_key=True)
    ids = []
    oai = openai.OpenAI(api_key=key, base_url=server.base_url + "/v1", max_retries=0)
    ids.append(
        oai.chat.completions.with_raw_response.create(
            model="via-gemini", messages=[{"role": "user", "content": "one"}]
        ).headers["request-id"]
    )
    claude = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
    ids.append(
        claude.messages.with_raw_response.create(
            model="via-openai", max_tokens=64, messages=[{"role": "user", "content": "two"}]
        ).headers["request-id"]
    )
    resp = HTTP.post(
        f"{server.base_url}/v1beta/models/via-anthropic:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "three"}]}]},
        headers={"x-goog-api-key": key},
    )
    assert resp.status_code == 200, resp.text
    ids.append(resp.headers["request-id"])
    ids.append(
        oai.responses.with_raw_response.create(model="via-anthropic", input="four").headers["request-id"]
    )
    total = Decimal(0)
    for request_id in ids:
        rec = record(server, key, request_id)
        assert rec["status"] == "ok" and rec["cost"] > 0
        total += Decimal(str(rec["cost"]))
    balance = Decimal(server.admin("GET", f"/admin/accounts/{account_id}").json()["balance"])
    assert balance == Decimal("10") - total
    endpoints = {record(server, key, i)["endpoint"] for i in ids}
    assert endpoints == {
        "/v1/chat/completions",
        "/v1/messages",
        "/v1beta/models:generateContent",
        "/v1/responses",
    }
