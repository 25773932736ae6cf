"""The vendor table end to end: prepare + chat/open_stream against the OpenAI simulator.

The simulator listens on 127.0.0.1, which is in no vendor row, so each test sets ``adapter.vendor``
to the row it exercises and checks what the simulator received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from omnirelay.providers.openai_compat.adapter import OpenAICompatAdapter, iter_sse_events
from omnirelay.providers.openai_compat.vendors import load_vendors
from omnirelay.settings import ChannelConfig
from tests.upstreams.openai import DEFAULT_API_KEY, OpenAISim

MSG = [{"role": "user", "content": "Say hello to the vendor table"}]


@pytest.fixture
async def adapter(sim: OpenAISim) -> AsyncIterator[OpenAICompatAdapter]:
    sim.config.models.append("deepseek-reasoner")
    sim.config.reasoning_models.add("deepseek-reasoner")
    async with aiohttp.ClientSession() as http:
        channel = ChannelConfig(name="vendor-sim", base_url=sim.base_url, api_key=DEFAULT_API_KEY)
        made = OpenAICompatAdapter(channel, http)
        assert made.vendor is None  # loopback matches no row
        yield made


async def _read_stream(resp: aiohttp.ClientResponse) -> list[dict[str, Any]]:
    chunks: list[dict[str, Any]] = []
    try:
        async for group in iter_sse_events(resp):
            for event in group:
                data = event.removeprefix(b"data: ")
                if data != b"[DONE]":
                    chunks.append(orjson.loads(data))
    finally:
        resp.release()
    return chunks


async def test_without_a_row_the_bytes_go_upstream_unchanged(
    sim: OpenAISim, adapter: OpenAICompatAdapter
) -> None:
    raw = orjson.dumps({"model": "gpt-4o-mini", "messages": MSG, "max_completion_tokens": 3, "seed": 1})
    sent = adapter.prepare(raw, None, False)
    assert sent is raw
    reply = await adapter.chat(sent, DEFAULT_API_KEY, 10)
    assert reply.status == 200
    assert sim.chat_requests[-1].body == raw


async def test_deepseek_reasoner_fields_dropped_and_renamed(
    sim: OpenAISim, adapter: OpenAICompatAdapter
) -> None:
    adapter.vendor = load_vendors()["deepseek"]
    body = {
        "model": "deepseek-reasoner",
        "messages": MSG,
        "max_completion_tokens": 3,
        "logprobs": True,
        "top_logprobs": 2,
        "temperature": 0.5,
    }
    raw = orjson.dumps(body)
    sent = adapter.prepare(raw, body, False)
    assert sent is not raw
    reply = await adapter.chat(sent, DEFAULT_API_KEY, 10)
    assert reply.status == 200
    received = sim.chat_requests[-1]
    assert received.json == {
        "model": "deepseek-reasoner",
        "messages": MSG,
        "max_tokens": 3,
        "temperature": 0.5,
    }
    assert received.headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
    answer = orjson.loads(reply.body)
    # max_tokens reached the simulator under its renamed name: the answer was cut at 3 words.
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["choices"][0]["message"]["content"] == "Echo: Say hello"
    assert answer["choices"][0]["message"]["reasoning_content"]
    assert "logprobs" not in answer["choices"][0] or answer["choices"][0]["logprobs"] is None


async def test_deepseek_stream_keeps_the_usage_option(sim: OpenAISim, adapter: OpenAICompatAdapter) -> None:
    adapter.vendor = load_vendors()["deepseek"]
    body = {
        "model": "deepseek-chat",
        "messages": MSG,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 2,
    }
    sent = adapter.prepare(orjson.dumps(body), None, True)
    chunks = await _read_stream(await adapter.open_stream(sent, DEFAULT_API_KEY, 10))
    assert sim.chat_requests[-1].json == {
        "model": "deepseek-chat",
        "messages": MSG,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 2,
    }
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2


async def test_mistral_stream_drops_the_usage_option(sim: OpenAISim, adapter: OpenAICompatAdapter) -> None:
    adapter.vendor = load_vendors()["mistral"]
    body = {
        "model": "sim-model",
        "messages": MSG,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 42,
        "user": "end-user-1",
        "temperature": 1.9,
    }
    sent = adapter.prepare(orjson.dumps(body), body, True)
    chunks = await _read_stream(await adapter.open_stream(sent, DEFAULT_API_KEY, 10))
    assert sim.chat_requests[-1].json == {
        "model": "sim-model",
        "messages": MSG,
        "stream": True,
        "random_seed": 42,
        "temperature": 1.5,
    }
    assert chunks and all(chunk["choices"] for chunk in chunks)  # no usage chunk was asked for


async def test_openrouter_row_adds_its_header(sim: OpenAISim, adapter: OpenAICompatAdapter) -> None:
    adapter.vendor = load_vendors()["openrouter"]
    raw = orjson.dumps({"model": "gpt-4o-mini", "messages": MSG})
    sent = adapter.prepare(raw, None, False)
    assert sent is raw  # nothing in the body to change
    reply = await adapter.chat(sent, DEFAULT_API_KEY, 10)
    assert reply.status == 200
    received = sim.chat_requests[-1]
    assert received.headers["x-title"] == "omnirelay"
    assert received.body == raw
