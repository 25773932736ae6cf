"""omnirelay.providers.openai_compat.vendors: the vendor table, host matching and the body rewrite."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from omnirelay.providers.openai_compat.adapter import OpenAICompatAdapter
from omnirelay.providers.openai_compat.vendors import (
    Vendor,
    apply_vendor,
    host_of,
    load_vendors,
    parse_vendors,
    prepare_body,
    vendor_for,
)
from omnirelay.settings import ChannelConfig

DOCS = Path(__file__).resolve().parents[2] / "docs" / "vendors.md"
MSG = [{"role": "user", "content": "Hi"}]
EXPECTED_IDS = {
    "deepseek",
    "qwen",
    "zhipu",
    "moonshot",
    "baichuan",
    "lingyiwanwu",
    "doubao",
    "stepfun",
    "spark",
    "sensenova",
    "minimax",
    "hunyuan",
    "qianfan",
    "siliconflow",
    "ppio",
    "mistral",
    "xai",
    "perplexity",
    "groq",
    "together",
    "openrouter",
}


def _channel(base_url: str) -> ChannelConfig:
    return ChannelConfig(name="c", base_url=base_url, api_key="sk-test")


# ---- the shipped table -------------------------------------------------------------------------


def test_every_row_loads() -> None:
    vendors = load_vendors()
    assert set(vendors) == EXPECTED_IDS
    for vendor_id, vendor in vendors.items():
        assert vendor.id == vendor_id
        assert vendor.name and vendor.source, vendor_id
        assert vendor.base_url.startswith("https://"), vendor_id
        assert vendor.hosts[0] == host_of(vendor.base_url), vendor_id
        assert vendor.auth == "bearer", vendor_id  # no shipped vendor needs another scheme
        assert vendor.auth_header is None, vendor_id
        for low, high in (
            (vendor.min_temperature, vendor.max_temperature),
            (vendor.min_top_p, vendor.max_top_p),
        ):
            assert low is None or high is None or low <= high, vendor_id


def test_load_vendors_returns_a_fresh_dict() -> None:
    first = load_vendors()
    first.pop("deepseek")
    assert "deepseek" in load_vendors()


def test_hosts_are_unique_across_rows() -> None:
    hosts = [host for vendor in load_vendors().values() for host in vendor.hosts]
    assert len(hosts) == len(set(hosts))
    assert all(host == host.lower() and host for host in hosts)


def test_shipped_rows_as_written() -> None:
    """Spot checks of the data itself, so an accidental edit of a known fact shows up."""
    v = load_vendors()
    assert v["deepseek"].base_url == "https://api.deepseek.com/v1"
    assert v["deepseek"].reasoning_field == "reasoning_content"
    assert v["deepseek"].stream_usage is True
    assert v["mistral"].rename_params == (("max_completion_tokens", "max_tokens"), ("seed", "random_seed"))
    assert "stream_options" in v["mistral"].unsupported_params
    assert v["mistral"].stream_usage is False
    assert v["groq"].unsupported_params == ("logprobs", "logit_bias", "top_logprobs")
    assert v["groq"].reasoning_field == "reasoning"
    assert v["zhipu"].min_temperature == 0.01 and v["zhipu"].max_temperature == 0.99
    assert v["moonshot"].max_temperature == 1.0
    assert v["openrouter"].extra_headers == (("X-Title", "omnirelay"),)
    assert v["perplexity"].base_url == "https://api.perplexity.ai"
    assert v["qwen"].hosts == ("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com")


def test_docs_table_lists_every_vendor() -> None:
    text = DOCS.read_text(encoding="utf-8")
    for vendor in load_vendors().values():
        assert f"`{vendor.id}`" in text, vendor.id
        assert vendor.base_url in text, vendor.id


# ---- vendor_for: matching by host --------------------------------------------------------------


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("https://api.deepseek.com/v1", "deepseek"),
        ("https://api.deepseek.com", "deepseek"),  # the path does not matter
        ("https://API.DeepSeek.com/v1", "deepseek"),  # nor the case of the host
        ("https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "qwen"),  # an also_hosts entry
        ("https://api.z.ai/api/paas/v4", "zhipu"),
        ("https://api.groq.com:443/openai/v1", "groq"),  # nor the port
        ("https://openrouter.ai/api/v1", "openrouter"),
        ("https://api.openai.com/v1", None),  # OpenAI itself: plain pass-through
        ("http://127.0.0.1:8000/v1", None),
        ("https://deepseek.example.com/v1", None),  # a proxy in front of a vendor is not matched
    ],
)
def test_vendor_for_matches_by_host(base_url: str, expected: str | None) -> None:
    vendor = vendor_for(_channel(base_url))
    assert (vendor.id if vendor else None) == expected


# ---- apply_vendor: exact rewrites, computed by hand --------------------------------------------

CASES: list[tuple[str, str, bool, dict[str, Any], dict[str, Any]]] = [
    (
        "deepseek reasoner: logprobs removed, max_completion_tokens renamed, usage option kept",
        "deepseek",
        True,
        {
            "model": "deepseek-reasoner",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "logprobs": True,
            "top_logprobs": 3,
            "temperature": 1.5,
            "max_completion_tokens": 100,
        },
        {
            "model": "deepseek-reasoner",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 1.5,
            "max_tokens": 100,
        },
    ),
    (
        "deepseek chat keeps logprobs (the rule is for the reasoner only)",
        "deepseek",
        False,
        {"model": "deepseek-chat", "messages": MSG, "logprobs": True, "top_logprobs": 3},
        {"model": "deepseek-chat", "messages": MSG, "logprobs": True, "top_logprobs": 3},
    ),
    (
        "stream_options outside a stream is removed even for a vendor that honours it",
        "deepseek",
        False,
        {"model": "deepseek-chat", "messages": MSG, "stream_options": {"include_usage": True}},
        {"model": "deepseek-chat", "messages": MSG},
    ),
    (
        "mistral: strict fields removed, seed renamed, temperature clamped to 1.5, n kept",
        "mistral",
        True,
        {
            "model": "mistral-large-latest",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "seed": 7,
            "user": "u-1",
            "logit_bias": {"50256": -100},
            "max_completion_tokens": 64,
            "temperature": 2,
            "n": 2,
        },
        {
            "model": "mistral-large-latest",
            "messages": MSG,
            "stream": True,
            "random_seed": 7,
            "max_tokens": 64,
            "temperature": 1.5,
            "n": 2,
        },
    ),
    (
        "zhipu: temperature 0 and top_p 1 moved inside (0, 1); stream_options removed on a stream",
        "zhipu",
        True,
        {
            "model": "glm-4-plus",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "temperature": 0,
            "top_p": 1,
        },
        {"model": "glm-4-plus", "messages": MSG, "stream": True, "temperature": 0.01, "top_p": 0.99},
    ),
    (
        "moonshot: temperature above 1 clamped to 1.0, values inside left exactly as sent",
        "moonshot",
        False,
        {"model": "moonshot-v1-8k", "messages": MSG, "temperature": 1.3, "top_p": 0.9},
        {"model": "moonshot-v1-8k", "messages": MSG, "temperature": 1.0, "top_p": 0.9},
    ),
    (
        "sensenova: both output limits become max_new_tokens, max_completion_tokens wins",
        "sensenova",
        False,
        {"model": "SenseChat-5", "messages": MSG, "max_tokens": 50, "max_completion_tokens": 70},
        {"model": "SenseChat-5", "messages": MSG, "max_new_tokens": 70},
    ),
    (
        "qwen: a rename whose target is set just removes the source; temperature 2 -> 1.99",
        "qwen",
        False,
        {
            "model": "qwen-plus",
            "messages": MSG,
            "max_tokens": 10,
            "max_completion_tokens": 20,
            "temperature": 2,
        },
        {"model": "qwen-plus", "messages": MSG, "max_tokens": 10, "temperature": 1.99},
    ),
    (
        "groq: logprobs fields removed, max_completion_tokens and the usage option kept",
        "groq",
        True,
        {
            "model": "llama-3.3-70b-versatile",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "logprobs": True,
            "top_logprobs": 2,
            "logit_bias": {"1": 1},
            "max_completion_tokens": 32,
        },
        {
            "model": "llama-3.3-70b-versatile",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 32,
        },
    ),
    (
        "perplexity: no tools, temperature below 2",
        "perplexity",
        False,
        {
            "model": "sonar",
            "messages": MSG,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": "auto",
            "temperature": 2.0,
        },
        {"model": "sonar", "messages": MSG, "temperature": 1.99},
    ),
    (
        "xai grok-4: reasoning-model fields removed (model matched case-insensitively)",
        "xai",
        False,
        {
            "model": "Grok-4-0709",
            "messages": MSG,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.5,
            "stop": ["\n"],
            "reasoning_effort": "high",
            "temperature": 0.7,
        },
        {"model": "Grok-4-0709", "messages": MSG, "temperature": 0.7},
    ),
    (
        "xai grok-3-mini keeps reasoning_effort, loses the penalties",
        "xai",
        False,
        {"model": "grok-3-mini", "messages": MSG, "presence_penalty": 0.5, "reasoning_effort": "low"},
        {"model": "grok-3-mini", "messages": MSG, "reasoning_effort": "low"},
    ),
    (
        "xai grok-3 is not a reasoning model: nothing removed",
        "xai",
        False,
        {"model": "grok-3", "messages": MSG, "presence_penalty": 0.5, "stop": "x"},
        {"model": "grok-3", "messages": MSG, "presence_penalty": 0.5, "stop": "x"},
    ),
    (
        "minimax: temperature 0 and top_p 0 raised to 0.01",
        "minimax",
        False,
        {"model": "MiniMax-Text-01", "messages": MSG, "temperature": 0, "top_p": 0.0},
        {"model": "MiniMax-Text-01", "messages": MSG, "temperature": 0.01, "top_p": 0.01},
    ),
    (
        "qianfan: temperature 0 raised to 0.01, top_p without bounds left alone",
        "qianfan",
        False,
        {"model": "ernie-4.0-8k", "messages": MSG, "temperature": 0, "top_p": 0},
        {"model": "ernie-4.0-8k", "messages": MSG, "temperature": 0.01, "top_p": 0},
    ),
    (
        "non-numeric temperature is left for the vendor to refuse",
        "moonshot",
        False,
        {"model": "moonshot-v1-8k", "messages": MSG, "temperature": "hot", "top_p": None},
        {"model": "moonshot-v1-8k", "messages": MSG, "temperature": "hot", "top_p": None},
    ),
    (
        "doubao: max_completion_tokens is Ark's own field and is kept",
        "doubao",
        True,
        {
            "model": "doubao-seed-1-6-250615",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 4096,
        },
        {
            "model": "doubao-seed-1-6-250615",
            "messages": MSG,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_completion_tokens": 4096,
        },
    ),
]


@pytest.mark.parametrize(
    ("vendor_id", "stream", "body", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_apply_vendor(vendor_id: str, stream: bool, body: dict[str, Any], expected: dict[str, Any]) -> None:
    before = copy.deepcopy(body)
    out = apply_vendor(body, load_vendors()[vendor_id], stream=stream)
    assert out == expected
    assert body == before  # pure: the input is never changed


def test_apply_vendor_keeps_types_of_values_inside_the_bounds() -> None:
    out = apply_vendor(
        {"model": "m", "messages": MSG, "temperature": 1}, load_vendors()["moonshot"], stream=False
    )
    assert out["temperature"] == 1 and isinstance(out["temperature"], int)


@pytest.mark.parametrize("vendor_id", sorted(EXPECTED_IDS))
def test_every_row_removes_and_renames_exactly_its_fields(vendor_id: str) -> None:
    vendor = load_vendors()[vendor_id]
    body: dict[str, Any] = {"model": "some-model", "messages": MSG, "stream": True, "kept_field": 1}
    body.update({name: f"drop-{name}" for name in vendor.unsupported_params})
    body.update({source: f"from-{source}" for source, _ in vendor.rename_params})
    out = apply_vendor(body, vendor, stream=True)
    for name in vendor.unsupported_params:
        assert name not in out
    targets: dict[str, str] = {}
    for source, target in vendor.rename_params:
        assert source not in out
        targets.setdefault(target, f"from-{source}")
    for target, value in targets.items():
        assert out[target] == value
    assert out["kept_field"] == 1 and out["model"] == "some-model" and out["stream"] is True


# ---- prepare: the raw bytes stay untouched unless a row changes them ---------------------------


async def test_plain_openai_channel_keeps_the_raw_bytes_object() -> None:
    raw = orjson.dumps(
        {"model": "gpt-4o", "messages": MSG, "temperature": 1.9, "logprobs": True, "seed": 3, "stream": False}
    )
    async with aiohttp.ClientSession() as http:
        adapter = OpenAICompatAdapter(_channel("https://api.openai.com/v1"), http)
        assert adapter.vendor is None
        assert adapter.prepare(raw, None, False) is raw
        assert adapter.prepare(raw, orjson.loads(raw), True) is raw
        assert adapter._headers("sk-x", False) == {
            "Authorization": "Bearer sk-x",
            "Content-Type": "application/json",
            "Accept": "application/json",
        }


async def test_vendor_channel_prepare() -> None:
    async with aiohttp.ClientSession() as http:
        adapter = OpenAICompatAdapter(_channel("https://api.deepseek.com/v1"), http)
        assert adapter.vendor is not None and adapter.vendor.id == "deepseek"
        unchanged = orjson.dumps({"model": "deepseek-chat", "messages": MSG, "max_tokens": 8})
        assert adapter.prepare(unchanged, None, False) is unchanged
        assert adapter.prepare(unchanged, orjson.loads(unchanged), False) is unchanged
        body = {"model": "deepseek-reasoner", "messages": MSG, "max_completion_tokens": 8, "logprobs": True}
        raw = orjson.dumps(body)
        for parsed in (None, body):
            sent = adapter.prepare(raw, parsed, False)
            assert orjson.loads(sent) == {"model": "deepseek-reasoner", "messages": MSG, "max_tokens": 8}
        assert adapter.prepare(b"not json", None, False) == b"not json"
        assert adapter.prepare(b"[1, 2]", None, False) == b"[1, 2]"


def test_prepare_body_returns_the_same_object_when_nothing_changes() -> None:
    raw = b'{"model":"glm-4-plus","messages":[{"role":"user","content":"Hi"}],"temperature":0.5}'
    assert prepare_body(raw, None, load_vendors()["zhipu"], stream=False) is raw


async def test_headers_carry_the_vendor_extras_and_auth_header() -> None:
    async with aiohttp.ClientSession() as http:
        adapter = OpenAICompatAdapter(_channel("https://openrouter.ai/api/v1"), http)
        assert adapter._headers("sk-or", True) == {
            "Authorization": "Bearer sk-or",
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "X-Title": "omnirelay",
        }
        assert adapter.vendor is not None
        adapter.vendor = dataclasses.replace(adapter.vendor, auth="header:api-key")
        headers = adapter._headers("sk-or", False)
        assert "Authorization" not in headers
        assert headers["api-key"] == "sk-or"


# ---- parse_vendors: a broken row is refused with a clear message -------------------------------


def _row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": "acme",
        "name": "Acme",
        "base_url": "https://api.acme.test/v1",
        "auth": "bearer",
        "stream_usage": True,
        "source": "(approximate)",
    }
    row.update(changes)
    return row


def test_parse_minimal_row() -> None:
    (vendor,) = parse_vendors({"version": 1, "vendors": [_row()]})
    assert isinstance(vendor, Vendor)
    assert vendor.hosts == ("api.acme.test",)
    assert vendor.unsupported_params == () and vendor.rename_params == () and vendor.extra_headers == ()
    assert vendor.max_temperature is None and vendor.reasoning_field is None and vendor.notes == ""


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"vendors": []}, "version: 1"),
        ({"version": 1, "vendors": [_row(colour="red")]}, "unknown fields"),
        ({"version": 1, "vendors": [{"id": "acme"}]}, "missing fields"),
        ({"version": 1, "vendors": [_row(id="Acme!")]}, "slug"),
        ({"version": 1, "vendors": [_row(base_url="http://api.acme.test/v1")]}, "https URL"),
        ({"version": 1, "vendors": [_row(base_url="https://api.acme.test/v1/")]}, "trailing"),
        ({"version": 1, "vendors": [_row(auth="basic")]}, "'auth'"),
        ({"version": 1, "vendors": [_row(unsupported_params=["n"])]}, "unsupported_params"),
        ({"version": 1, "vendors": [_row(unsupported_params={"params": ["model"]})]}, "may not remove"),
        (
            {"version": 1, "vendors": [_row(unsupported_params={"params": ["n"]}, rename_params={"n": "k"})]},
            "touches an unsupported field",
        ),
        ({"version": 1, "vendors": [_row(rename_params={"stream": "streaming"})]}, "not allowed"),
        ({"version": 1, "vendors": [_row(min_temperature=1.0, max_temperature=0.5)]}, "above"),
        ({"version": 1, "vendors": [_row(max_temperature="1")]}, "number"),
        ({"version": 1, "vendors": [_row(stream_usage="yes")]}, "stream_usage"),
        ({"version": 1, "vendors": [_row(extra_headers={"Authorization": "x"})]}, "not allowed"),
        ({"version": 1, "vendors": [_row(model_rules=[{"models": ["x*"]}])]}, "non-empty"),
        ({"version": 1, "vendors": [_row(also_hosts=["API.acme.test"])]}, "listed twice"),
        ({"version": 1, "vendors": [_row(), _row()]}, "duplicate id"),
        (
            {
                "version": 1,
                "vendors": [
                    _row(),
                    _row(id="other", base_url="https://other.test", also_hosts=["api.acme.test"]),
                ],
            },
            "is also",
        ),
    ],
)
def test_parse_vendors_refuses(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_vendors(data)
