"""Record the upstream fixtures of the golden tests from the simulators (run once; see README.md).

    .venv/bin/python -m tests.golden.record          # record tests/golden/upstream/
    .venv/bin/python -m tests.golden.record --check  # send every request golden to its simulator

Starts each upstream simulator (OpenAI, Anthropic, Gemini) in-process, sends it the scenario requests
(each request body is what ``to_body`` of that upstream dialect writes for the scenario's canonical
request, so the simulators' strict checks also cover it), and writes what came back, untouched but for
normalisation, to ``tests/golden/upstream/<upstream>/<scenario>.json`` (the answer body, indented) and
``.sse`` (the raw stream bytes). Normalisation makes the files stable: random ids become fixed ones
numbered in order of first appearance (``call_golden1``, ``toolu_golden2``...), OpenAI's ``created``
becomes 1700000000. Simulator replies are otherwise deterministic.

One stream is reshaped after recording: the OpenAI simulator streams parallel tool calls one after the
other, while the OpenAI format lets their argument fragments interleave (each fragment names its call
by ``index``). ``openai_chat/tools.sse`` therefore has the recorded events, each byte-identical, in an
interleaved order (round robin over the calls). Anthropic streams content blocks strictly one after
another and Gemini sends function calls whole, so their formats allow no interleaving.

The ``error`` scenario is a stream the simulator cuts (``stream_cut_after``): the file ends where the
connection dropped, without the upstream's end-of-stream marker.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import aiohttp

from omnirelay.core.chat import ChatRequest, Message, TextPart, ToolChoice, ToolDef
from omnirelay.dialects import registry
from tests.golden.harness import (
    CREATED,
    EXPECTED_DIR,
    HERE,
    PAIRS,
    REQUEST_SCENARIOS,
    UPSTREAM_DIR,
    upstream_model,
)
from tests.upstreams.anthropic.sim import DEFAULT_API_KEY as ANTHROPIC_KEY
from tests.upstreams.anthropic.sim import AnthropicSim
from tests.upstreams.gemini.sim import DEFAULT_API_KEY as GEMINI_KEY
from tests.upstreams.gemini.sim import GeminiSim
from tests.upstreams.openai.sim import DEFAULT_API_KEY as OPENAI_KEY
from tests.upstreams.openai.sim import OpenAISim

JSON = dict[str, Any]

_TOOLS = [
    ToolDef(
        name="get_weather",
        description="Current weather in a city.",
        parameters={
            "type": "object",
            "properties": {
                "city": {"type": "string", "enum": ["Paris", "Tokyo"]},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city", "unit"],
        },
    ),
    ToolDef(
        name="get_time",
        description="Local time in a time zone.",
        parameters={
            "type": "object",
            "properties": {"timezone": {"type": "string", "enum": ["Asia/Tokyo", "Europe/Paris"]}},
            "required": ["timezone"],
        },
    ),
]


def _user(text: str) -> list[Message]:
    return [Message("user", [TextPart(text)])]


# The canonical request of each recorded scenario (``stream`` is set per recording).
SCENARIOS: dict[str, ChatRequest] = {
    "text": ChatRequest(
        model="", messages=_user("Hi there"), system=[TextPart("You are terse.")], max_tokens=64
    ),
    "tools": ChatRequest(
        model="",
        messages=_user("Weather in Paris and the time in Tokyo, call all tools"),
        tools=_TOOLS,
        tool_choice=ToolChoice("auto"),
        max_tokens=256,
    ),
    "thinking": ChatRequest(
        model="",
        messages=_user("Why is the sky blue?"),
        max_tokens=2048,
        reasoning_enabled=True,
        reasoning_budget=1024,
    ),
    "usage": ChatRequest(
        model="",
        messages=_user("Summarize the cached document."),
        system=[TextPart("You are a helpful assistant.")],
        max_tokens=64,
    ),
    "error": ChatRequest(model="", messages=_user("Tell me a short story"), max_tokens=64),
}
NON_STREAM = ("text", "tools", "thinking", "usage")
STREAM = ("text", "tools", "thinking", "error", "usage")

# Cache figures the simulators report in the usage scenario (and nowhere else).
OPENAI_CACHED = 8
ANTHROPIC_CACHE_READ = 1200
ANTHROPIC_CACHE_WRITE = 300
GEMINI_CACHED = 1000
# The error scenario: how many SSE events each simulator sends before it drops the connection.
CUT_AFTER = {"openai_chat": 3, "anthropic": 5, "gemini": 2}


@dataclass
class Target:
    """How to call one simulator: the URL, the headers, and its config knobs per scenario."""

    url: Callable[[str, bool], str]  # (model, stream) -> URL
    headers: dict[str, str]
    configure: Callable[[str], None]  # scenario -> set the simulator's config for it
    reset: Callable[[], None]


async def _fetch(session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: JSON) -> bytes:
    """POST ``body``; the response bytes, up to where a cut connection stopped them."""
    received = b""
    async with session.post(url, json=body, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"{url} answered {resp.status}: {await resp.text()}")
        try:
            async for data in resp.content.iter_any():
                received += data
        except aiohttp.ClientPayloadError:
            pass  # the simulator cut the stream (the error scenario)
    return received


# -- normalisation -------------------------------------------------------------------------------

# (pattern whose group 1 is a random id, prefix of its replacement); replacements are numbered per file.
_ID_PATTERNS: dict[str, list[tuple[bytes, str]]] = {
    "openai_chat": [
        (rb"(chatcmpl-[A-Za-z0-9]{29})", "chatcmpl-golden"),
        (rb"(call_[A-Za-z0-9]{24})", "call_golden"),
    ],
    "anthropic": [(rb"(msg_[A-Za-z0-9]{24})", "msg_golden"), (rb"(toolu_[A-Za-z0-9]{24})", "toolu_golden")],
    "gemini": [
        (rb'"responseId": ?"([A-Za-z0-9]{22})"', "goldenResponseId"),
        (rb"(fc_[A-Za-z0-9]{16})", "fc_golden"),
    ],
}


def normalise(upstream: str, raw: bytes) -> bytes:
    """Random ids -> stable ones (numbered by first appearance), OpenAI ``created`` -> a fixed time."""
    for pattern, prefix in _ID_PATTERNS[upstream]:
        seen: dict[bytes, bytes] = {}

        def stable(match: re.Match[bytes], seen: dict[bytes, bytes] = seen, prefix: str = prefix) -> bytes:
            found = match.group(1)
            if found not in seen:
                seen[found] = f"{prefix}{len(seen) + 1}".encode()
            start, end = match.span(1)
            whole = match.group(0)
            offset = match.start(0)
            return whole[: start - offset] + seen[found] + whole[end - offset :]

        raw = re.sub(pattern, stable, raw)
    if upstream == "openai_chat":
        raw = re.sub(rb'"created": ?\d+', f'"created":{CREATED}'.encode(), raw)
    return raw


def interleave_openai_tool_calls(raw: bytes) -> bytes:
    """The recorded OpenAI stream with the tool-call events of the calls in round-robin order."""
    events = [e for e in raw.split(b"\n\n") if e]
    calls: dict[int, list[bytes]] = {}
    head: list[bytes] = []
    tail: list[bytes] = []
    for event in events:
        payload = event.removeprefix(b"data: ")
        data = json.loads(payload) if payload != b"[DONE]" else {}
        choices = data.get("choices") or []
        delta = choices[0].get("delta", {}) if choices else {}
        if delta.get("tool_calls"):
            calls.setdefault(delta["tool_calls"][0]["index"], []).append(event)
        elif calls:
            tail.append(event)
        else:
            head.append(event)
    mixed: list[bytes] = []
    queues = [calls[k] for k in sorted(calls)]
    while any(queues):
        for queue in queues:
            if queue:
                mixed.append(queue.pop(0))
    if len(queues) < 2:
        raise RuntimeError("the tools scenario must stream at least two tool calls")
    return b"".join(e + b"\n\n" for e in head + mixed + tail)


# -- recording -----------------------------------------------------------------------------------


async def _record_upstream(upstream: str, target: Target, session: aiohttp.ClientSession) -> None:
    out = UPSTREAM_DIR / upstream
    out.mkdir(parents=True, exist_ok=True)
    dialect = registry.upstream(upstream)
    for stream, scenarios in ((False, NON_STREAM), (True, STREAM)):
        for scenario in scenarios:
            target.reset()
            target.configure(scenario)
            model = upstream_model(upstream, scenario)
            request = replace(SCENARIOS[scenario], model=model, stream=stream)
            body = dialect.to_body(request, upstream_model=model)
            raw = normalise(upstream, await _fetch(session, target.url(model, stream), target.headers, body))
            if stream:
                if upstream == "openai_chat" and scenario == "tools":
                    raw = interleave_openai_tool_calls(raw)
                (out / f"{scenario}.sse").write_bytes(raw)
            else:
                text = json.dumps(json.loads(raw), indent=2, ensure_ascii=False) + "\n"
                (out / f"{scenario}.json").write_text(text, encoding="utf-8")
            print(f"recorded upstream/{upstream}/{scenario}.{'sse' if stream else 'json'}")


async def record(check: bool = False) -> None:
    async with OpenAISim() as openai, AnthropicSim() as anthropic, GeminiSim() as gemini:

        def configure_openai(scenario: str) -> None:
            openai.config.cached_tokens = OPENAI_CACHED if scenario == "usage" else 0
            openai.config.stream_cut_after = CUT_AFTER["openai_chat"] if scenario == "error" else None

        def configure_anthropic(scenario: str) -> None:
            usage = scenario == "usage"
            anthropic.config.cache_read_input_tokens = ANTHROPIC_CACHE_READ if usage else 0
            anthropic.config.cache_creation_input_tokens = ANTHROPIC_CACHE_WRITE if usage else 0
            anthropic.config.stream_cut_after = CUT_AFTER["anthropic"] if scenario == "error" else None

        def configure_gemini(scenario: str) -> None:
            gemini.config.cached_tokens = GEMINI_CACHED if scenario == "usage" else 0
            gemini.config.stream_cut_after = CUT_AFTER["gemini"] if scenario == "error" else None

        def gemini_url(model: str, stream: bool) -> str:
            action = "streamGenerateContent?alt=sse" if stream else "generateContent"
            return f"{gemini.base_url}/v1beta/models/{model}:{action}"

        targets: dict[str, Target] = {
            "openai_chat": Target(
                url=lambda model, stream: f"{openai.base_url}/chat/completions",
                headers={"Authorization": f"Bearer {OPENAI_KEY}"},
                configure=configure_openai,
                reset=openai.reset,
            ),
            "anthropic": Target(
                url=lambda model, stream: f"{anthropic.base_url}/v1/messages",
                headers={"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"},
                configure=configure_anthropic,
                reset=anthropic.reset,
            ),
            "gemini": Target(
                url=gemini_url,
                headers={"x-goog-api-key": GEMINI_KEY},
                configure=configure_gemini,
                reset=gemini.reset,
            ),
        }
        async with aiohttp.ClientSession() as session:
            if check:
                await _check_requests(targets, session)
                return
            for name, target in targets.items():
                await _record_upstream(name, target, session)


async def _check_requests(targets: dict[str, Target], session: aiohttp.ClientSession) -> None:
    """Send every request golden (``expected/*/<scenario>.request.json``) to its simulator and print
    the ones it refuses: a translated body the upstream would not take. Writes nothing."""
    refused = 0
    for inbound, upstream in PAIRS:
        target = targets[upstream]
        for scenario in REQUEST_SCENARIOS:
            target.reset()
            path = EXPECTED_DIR / f"{inbound}__{upstream}" / f"{scenario}.request.json"
            model = upstream_model(upstream, scenario)
            body = json.loads(path.read_text())
            async with session.post(target.url(model, False), json=body, headers=target.headers) as resp:
                if resp.status != 200:
                    refused += 1
                    print(f"{path.relative_to(HERE)}: {resp.status} {(await resp.text())[:300]}")
    print(f"{refused} request golden(s) refused")


if __name__ == "__main__":
    asyncio.run(record(check="--check" in sys.argv[1:]))
