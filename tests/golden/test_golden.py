"""Golden tests of every (inbound dialect, upstream dialect) pair: requests, answers, streams.

Two kinds of checks (README.md beside this file):

- ``test_golden_file``: each golden file under ``expected/`` and ``canonical/`` is recomputed from the
  fixtures and compared (SSE byte for byte, JSON as JSON). A missing golden fails; nothing is written.
- semantic checks, independent of the golden files: what a client of the inbound format reads
  (decoded by ``clients.py``, which does not use the dialect code) is held against the recorded
  upstream fixture and hand-computed numbers, so a wrong golden file cannot hide a bug.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from omnirelay.core.usage import Usage
from omnirelay.dialects import registry
from tests.golden import harness
from tests.golden.clients import Call, Thought, Turn, read_response, read_stream, usage_numbers
from tests.golden.harness import (
    CANONICAL_DIR,
    EXPECTED_DIR,
    HERE,
    INBOUNDS,
    PAIRS,
    STREAM_SCENARIOS,
    UPSTREAMS,
    Golden,
)

JSON = dict[str, Any]

GOLDENS = harness.goldens()
PAIR_IDS = [f"{i}__{u}" for i, u in PAIRS]


PER_PAIR = pytest.mark.parametrize(("inbound", "upstream"), PAIRS, ids=PAIR_IDS)


# -- the golden files ------------------------------------------------------------------------------


@pytest.mark.parametrize("golden", GOLDENS, ids=[g.path for g in GOLDENS])
def test_golden_file(golden: Golden) -> None:
    if not golden.file.is_file():
        pytest.fail(
            f"golden file {golden.path} is missing: run `.venv/bin/python -m tests.golden.regenerate` "
            "and review the new file"
        )
    expected = golden.file.read_bytes()
    actual = golden.compute()
    note = harness.CORRECTED.get(golden.path)
    hint = f"known bug, the golden holds the right output: {note}" if note else "see tests/golden/README.md"
    if golden.kind == "sse":
        assert actual == expected, f"{golden.path} differs ({hint})\n--- got ---\n{actual.decode()}"
    else:
        assert harness.same_json(actual, expected), f"{golden.path} differs ({hint})\n{actual.decode()}"


def test_every_golden_file_belongs_to_a_case() -> None:
    """A golden nothing computes any more (a renamed scenario, a dropped pair) must not linger."""
    known = {g.file for g in GOLDENS}
    present = {p for root in (EXPECTED_DIR, CANONICAL_DIR) for p in root.rglob("*") if p.is_file()}
    assert sorted(str(p.relative_to(HERE)) for p in present - known) == []


def test_the_matrix_is_complete() -> None:
    assert len(PAIRS) == len(INBOUNDS) * len(UPSTREAMS) == 12
    for inbound, upstream in PAIRS:
        where = EXPECTED_DIR / f"{inbound}__{upstream}"
        names = {g.file.name for g in GOLDENS if g.file.parent == where}
        assert names == {
            *(f"{s}.request.json" for s in ("text", "tools", "thinking", "image")),
            *(f"{s}.response.json" for s in ("text", "tools", "thinking", "usage")),
            *(f"{s}.stream.sse" for s in ("text", "tools", "thinking", "error", "usage")),
        }


# -- helpers: the recorded upstream answers, read without the dialect code --------------------------


def _upstream_file(upstream: str, scenario: str) -> JSON:
    data = json.loads((HERE / "upstream" / upstream / f"{scenario}.json").read_text())
    assert isinstance(data, dict)
    return data


def _upstream_turn(upstream: str, scenario: str) -> Turn:
    """The recorded non-stream answer, read as a client of that upstream's own format would."""
    return read_response(upstream, _upstream_file(upstream, scenario))


def _answers(inbound: str, upstream: str, scenario: str) -> tuple[Turn, Turn]:
    """(non-stream, stream) as the inbound format's client reads them."""
    whole = read_response(inbound, harness.rendered_response(inbound, upstream, scenario))
    streamed = read_stream(inbound, harness.rendered_stream(inbound, upstream, scenario))
    return whole, streamed


def _args(call: Call) -> Any:
    return json.loads(call.arguments)


# -- text ------------------------------------------------------------------------------------------

FINISH_STOP = {
    "openai_chat": "stop",
    "anthropic": "end_turn",
    "gemini": "STOP",
    "openai_responses": "completed",
}


@PER_PAIR
def test_text_stream_equals_answer(inbound: str, upstream: str) -> None:
    expected = _upstream_turn(upstream, "text").text
    assert expected == "Echo: Hi there"
    whole, streamed = _answers(inbound, upstream, "text")
    assert whole.text == streamed.text == expected
    assert whole.finish == streamed.finish == FINISH_STOP[inbound]
    assert whole.calls == streamed.calls == []


# -- tool calls ------------------------------------------------------------------------------------

# Gemini sends no call ids: the dialect names them call_<position> (docs/providers/gemini.md).
EXPECTED_CALL_IDS = {
    "openai_chat": ["call_golden1", "call_golden2"],
    "anthropic": ["toolu_golden1", "toolu_golden2"],
    "gemini": ["call_0", "call_1"],
}
FINISH_TOOLS = {
    "openai_chat": "tool_calls",
    "anthropic": "tool_use",
    "gemini": "STOP",
    "openai_responses": "completed",
}


@PER_PAIR
def test_tool_calls_stream_equals_answer(inbound: str, upstream: str) -> None:
    recorded = _upstream_turn(upstream, "tools").calls
    assert [c.name for c in recorded] == ["get_weather", "get_time"]
    whole, streamed = _answers(inbound, upstream, "tools")
    for turn in (whole, streamed):
        assert [c.name for c in turn.calls] == ["get_weather", "get_time"]
        assert [c.id for c in turn.calls] == EXPECTED_CALL_IDS[upstream]
        assert [_args(c) for c in turn.calls] == [_args(c) for c in recorded]
        assert turn.finish == FINISH_TOOLS[inbound]
    # every call streamed in a slot of its own, with its own id
    assert len({c.slot for c in streamed.calls}) == len(streamed.calls)
    assert len({c.id for c in streamed.calls}) == len(streamed.calls)
    # the full argument JSON assembled from the fragments is the non-stream one
    assert [_args(c) for c in streamed.calls] == [_args(c) for c in whole.calls]


def test_openai_tool_call_fragments_interleave() -> None:
    """The OpenAI fixture really interleaves its calls' fragments (record.py), so the pairs above see
    a late fragment of the first call after the second call started."""
    parsed = harness.canonical_stream("openai_chat", "tools")
    order = [
        (type(e).__name__, getattr(e, "index", None))
        for e in parsed.events
        if type(e).__name__ in ("ToolCallStart", "ToolCallDelta")
    ]
    second_start = order.index(("ToolCallStart", 1))
    assert ("ToolCallDelta", 0) in order[second_start:]


def _history_calls_and_results(upstream: str, body: JSON) -> tuple[list[Call], list[tuple[str, str]]]:
    """Tool calls of the assistant turn and (call id or name, result text) of the results, as the
    upstream reads its request body."""
    calls: list[Call] = []
    results: list[tuple[str, str]] = []
    if upstream == "openai_chat":
        for message in body["messages"]:
            for k, call in enumerate(message.get("tool_calls") or []):
                calls.append(Call(call["id"], call["function"]["name"], call["function"]["arguments"], k))
            if message["role"] == "tool":
                results.append((message["tool_call_id"], message["content"]))
    elif upstream == "anthropic":
        for message in body["messages"]:
            for k, block in enumerate(message["content"]):
                if block["type"] == "tool_use":
                    calls.append(Call(block["id"], block["name"], json.dumps(block["input"]), k))
                elif block["type"] == "tool_result":
                    content = block["content"]
                    text = content if isinstance(content, str) else "".join(c["text"] for c in content)
                    results.append((block["tool_use_id"], text))
    else:
        for content in body["contents"]:
            for k, part in enumerate(content["parts"]):
                if "functionCall" in part:
                    fc = part["functionCall"]
                    calls.append(Call(fc.get("id", ""), fc["name"], json.dumps(fc["args"]), k))
                elif "functionResponse" in part:
                    fr = part["functionResponse"]
                    results.append((fr.get("id") or fr["name"], json.dumps(fr["response"])))
    return calls, results


@PER_PAIR
def test_tool_history_reaches_the_upstream_paired(inbound: str, upstream: str) -> None:
    """The client's earlier calls and their results reach the upstream, each result answering its call."""
    calls, results = _history_calls_and_results(upstream, harness.upstream_body(inbound, upstream, "tools"))
    assert [(c.name, _args(c)) for c in calls] == [
        ("get_weather", {"city": "Paris", "unit": "celsius"}),
        ("get_time", {"timezone": "Asia/Tokyo"}),
    ]
    assert len({c.id for c in calls}) == 2
    assert [r[0] for r in results] == [c.id for c in calls]
    assert [json.loads(r[1]) for r in results] == [{"temp_c": 18, "sky": "cloudy"}, {"time": "14:05"}]


# -- thinking --------------------------------------------------------------------------------------

# Formats whose answers can carry a thinking signature: Anthropic's ``signature``, Gemini's
# ``thoughtSignature``, the Responses ``encrypted_content``. Chat Completions has no field for one.
SIGNATURE_CARRIERS = {"anthropic", "gemini", "openai_responses"}


@PER_PAIR
def test_thinking_survives_in_answers(inbound: str, upstream: str) -> None:
    recorded = _upstream_turn(upstream, "thinking")
    assert recorded.thinking_text == "Thinking about the request: Why is the sky blue?"
    assert len(recorded.signatures) == (0 if upstream == "openai_chat" else 1)
    whole, streamed = _answers(inbound, upstream, "thinking")
    for turn in (whole, streamed):
        assert turn.thinking_text == recorded.thinking_text
        assert turn.text == recorded.text == "Echo: Why is the sky blue?"
        if inbound in SIGNATURE_CARRIERS:
            assert turn.signatures == recorded.signatures
        else:
            assert turn.signatures == []


@PER_PAIR
def test_thinking_blocks_stream_equals_answer(inbound: str, upstream: str) -> None:
    """Streamed or whole, the client gets the same thinking blocks, each signature where it belongs
    (a Gemini signature on an answer part is a signature-only block before that part), so the history
    it sends back is the same either way."""
    whole, streamed = _answers(inbound, upstream, "thinking")
    assert streamed.thoughts == whole.thoughts
    whole, streamed = _answers(inbound, upstream, "tools")
    assert streamed.thoughts == whole.thoughts


PRIOR = "Compare the decimals: 9.11 is 9.110 and 9.9 is 9.900, so 9.9 is bigger."
SIG_ANTHROPIC = "2Wk0aKF3u+ItgIGHuVpwustFFYKsD+HVhM0Eo6vSGok="  # Anthropic-style (and Responses)
SIG_GEMINI = "c2ltLXNpZ25hdHVyZTqxn765rxQrGIfpOavl+4TZBcpBI+hpYbY="  # on the Gemini answer's text part
# The prior assistant turn's thinking as each upstream receives it (README.md, "Thinking signatures").
REQUEST_THOUGHTS: dict[tuple[str, str], list[Thought]] = {
    ("openai_chat", "openai_chat"): [],
    ("openai_chat", "anthropic"): [],  # unsigned reasoning cannot be replayed to Anthropic
    ("openai_chat", "gemini"): [Thought(PRIOR, None)],
    ("anthropic", "openai_chat"): [],
    ("anthropic", "anthropic"): [Thought(PRIOR, SIG_ANTHROPIC)],
    ("anthropic", "gemini"): [Thought(PRIOR, SIG_ANTHROPIC)],
    ("gemini", "openai_chat"): [],
    ("gemini", "anthropic"): [Thought("", SIG_GEMINI)],  # unsigned thought dropped, signature kept
    ("gemini", "gemini"): [Thought(PRIOR, None), Thought("", SIG_GEMINI)],
    ("openai_responses", "openai_chat"): [],
    ("openai_responses", "anthropic"): [Thought(PRIOR, SIG_ANTHROPIC)],
    ("openai_responses", "gemini"): [Thought(PRIOR, SIG_ANTHROPIC)],
}


def _request_thoughts(upstream: str, body: JSON) -> list[Thought]:
    if upstream == "openai_chat":
        for message in body["messages"]:
            assert "reasoning_content" not in message and "thinking" not in message
        return []
    if upstream == "anthropic":
        return [
            Thought(b["thinking"], b["signature"])
            for m in body["messages"]
            for b in m["content"]
            if b["type"] == "thinking"
        ]
    model_turn = next(c for c in body["contents"] if c["role"] == "model")
    return read_response("gemini", {"candidates": [{"content": model_turn}]}).thoughts


@PER_PAIR
def test_thinking_reaches_the_upstream(inbound: str, upstream: str) -> None:
    body = harness.upstream_body(inbound, upstream, "thinking")
    assert _request_thoughts(upstream, body) == REQUEST_THOUGHTS[(inbound, upstream)]
    # the answer text of that turn always reaches the upstream
    assert "No, 9.9 is bigger." in json.dumps(body)


# -- images ----------------------------------------------------------------------------------------

WEBP = "UklGRh4AAABXRUJQVlA4TBEAAAAvAUAAAAdQjyLXo/+BiOh/AAA="
PHOTO_URL = "https://example.com/photos/cat.jpg"


def _images(upstream: str, body: JSON) -> list[tuple[str | None, str]]:
    """(media type, base64 data or URL) of each image in the upstream body."""
    out: list[tuple[str | None, str]] = []
    if upstream == "openai_chat":
        for message in body["messages"]:
            content = message.get("content")
            for part in content if isinstance(content, list) else []:
                if part["type"] == "image_url":
                    url = part["image_url"]["url"]
                    if url.startswith("data:"):
                        header, _, data = url[5:].partition(",")
                        out.append((header.split(";")[0], data))
                    else:
                        out.append((None, url))
    elif upstream == "anthropic":
        for message in body["messages"]:
            for block in message["content"]:
                if block["type"] == "image":
                    source = block["source"]
                    if source["type"] == "base64":
                        out.append((source["media_type"], source["data"]))
                    else:
                        out.append((None, source["url"]))
    else:
        for content in body["contents"]:
            for part in content["parts"]:
                if "inlineData" in part:
                    out.append((part["inlineData"]["mimeType"], part["inlineData"]["data"]))
                elif "fileData" in part:
                    out.append((part["fileData"]["mimeType"], part["fileData"]["fileUri"]))
    return out


@PER_PAIR
def test_image_media_type_reaches_the_upstream(inbound: str, upstream: str) -> None:
    body = harness.upstream_body(inbound, upstream, "image")
    url_type = "image/jpeg" if upstream == "gemini" else None  # Gemini's fileData needs one
    assert _images(upstream, body) == [("image/webp", WEBP), (url_type, PHOTO_URL)]
    assert "What is in these pictures?" in json.dumps(body)


@PER_PAIR
def test_declared_media_type_is_kept_not_sniffed(inbound: str, upstream: str) -> None:
    """A declared type survives even where the bytes say otherwise: the dialects carry the client's
    media type and only sniff when there is none."""
    text = json.dumps(harness.client_body(inbound, "image")).replace("image/webp", "image/gif")
    request = registry.inbound(inbound).parse(json.loads(text), model=harness.CLIENT_MODEL)
    body = registry.upstream(upstream).to_body(
        request, upstream_model=harness.upstream_model(upstream, "image")
    )
    assert _images(upstream, body)[0] == ("image/gif", WEBP)


# -- usage -----------------------------------------------------------------------------------------

# Canonical usage of the recorded answers, computed by hand from the simulators' rules
# (tests/upstreams/*/sim.py) and the recorded request texts (record.py):
EXPECTED_USAGE: dict[tuple[str, str], Usage] = {
    # OpenAI: prompt_tokens = Σ(words + 3) = ("You are a helpful assistant." 5 + 3) + ("Summarize the
    # cached document." 4 + 3) = 15, of which cached_tokens 8 (prompt_tokens includes them) -> 7
    # uncached; completion = "Echo: Summarize the cached document." = 5 words.
    ("openai_chat", "usage"): Usage(input_uncached=7, input_cache_read=8, output=5),
    # Anthropic: input_tokens = (4 + 3) + 5 system words = 12, excluding the cache figures reported
    # beside it: cache_read_input_tokens 1200, cache_creation_input_tokens 300; output 5.
    ("anthropic", "usage"): Usage(input_uncached=12, input_cache_read=1200, input_cache_write=300, output=5),
    # Gemini: promptTokenCount = 7 + 5 + 1000 cached = 1012 with cachedContentTokenCount 1000 inside it
    # -> 12 uncached; candidates 5 + thoughts 8 ("Thinking about the request: Summarize the cached
    # document.", counted though not shown) = 13 output, 8 of them reasoning.
    ("gemini", "usage"): Usage(input_uncached=12, input_cache_read=1000, output=13, reasoning=8),
    # thinking: prompt "Why is the sky blue?" 5 + 3 = 8; thought "Thinking about the request: Why is
    # the sky blue?" 9 words; answer "Echo: Why is the sky blue?" 6 words.
    ("openai_chat", "thinking"): Usage(input_uncached=8, output=15, reasoning=9),
    # Anthropic counts the thinking inside output_tokens (9 + 6) and reports no breakdown of it.
    ("anthropic", "thinking"): Usage(input_uncached=8, output=15),
    ("gemini", "thinking"): Usage(input_uncached=8, output=15, reasoning=9),
}


@pytest.mark.parametrize(("upstream", "scenario"), sorted(EXPECTED_USAGE), ids=str)
def test_canonical_usage_is_hand_computed(upstream: str, scenario: str) -> None:
    expected = EXPECTED_USAGE[(upstream, scenario)]
    assert harness.canonical_response(upstream, scenario).usage == expected
    parsed = harness.canonical_stream(upstream, scenario)
    assert parsed.parser.done
    assert parsed.parser.usage == expected


def _rendered_usage(inbound: str, usage: Usage) -> dict[str, int]:
    """The usage block each format should show for a canonical usage (docs: total input counts every
    input token once; Anthropic's input_tokens excludes the cache; Gemini's candidates exclude thoughts)."""
    total = usage.input_uncached + usage.input_cache_read + usage.input_cache_write
    if inbound == "openai_chat":
        return {
            "input": total,
            "cache_read": usage.input_cache_read,
            "output": usage.output,
            "reasoning": usage.reasoning,
            "total": total + usage.output,
        }
    if inbound == "anthropic":
        return {
            "input": total,
            "uncached": usage.input_uncached,
            "cache_read": usage.input_cache_read,
            "cache_write": usage.input_cache_write,
            "output": usage.output,
        }
    if inbound == "gemini":
        return {
            "input": total,
            "cache_read": usage.input_cache_read,
            "output": usage.output,
            "reasoning": usage.reasoning,
            "total": total + usage.output,
        }
    return {
        "input": total,
        "cache_read": usage.input_cache_read,
        "cache_write": usage.input_cache_write,
        "output": usage.output,
        "reasoning": usage.reasoning,
        "total": total + usage.output,
    }


@PER_PAIR
@pytest.mark.parametrize("scenario", ["usage", "thinking"])
def test_usage_reaches_the_client(inbound: str, upstream: str, scenario: str) -> None:
    expected = _rendered_usage(inbound, EXPECTED_USAGE[(upstream, scenario)])
    whole, streamed = _answers(inbound, upstream, scenario)
    assert whole.usage is not None and streamed.usage is not None
    assert usage_numbers(inbound, whole.usage) == expected
    assert usage_numbers(inbound, streamed.usage) == expected


# -- an upstream that breaks off mid-stream --------------------------------------------------------


@PER_PAIR
def test_broken_stream_ends_with_an_error_event(inbound: str, upstream: str) -> None:
    parsed = harness.canonical_stream(upstream, "error")
    assert not parsed.parser.done  # the recording stops before the upstream's end-of-stream marker
    turn = read_stream(inbound, harness.rendered_stream(inbound, upstream, "error"))
    assert turn.delivered == "Echo: Tell"  # what came before the break reached the client
    assert turn.error is not None
    assert harness.BREAK_MESSAGE in json.dumps(turn.error)
    last_event = {
        "openai_chat": "error",  # data: {"error": {...}}
        "anthropic": "error",  # event: error
        "gemini": "error",  # data: {"error": {"code", "message", "status"}}
        "openai_responses": "response.failed",  # after an `error` event
    }
    assert turn.last_event == last_event[inbound]
    assert turn.finish in (None, "failed")


# -- every stream is well-formed for its format's clients ------------------------------------------


@PER_PAIR
@pytest.mark.parametrize("scenario", STREAM_SCENARIOS)
def test_stream_is_well_formed(inbound: str, upstream: str, scenario: str) -> None:
    turn = read_stream(inbound, harness.rendered_stream(inbound, upstream, scenario))
    assert turn.violations == []


def test_fixtures_are_where_the_readme_says() -> None:
    for inbound in INBOUNDS:
        assert sorted(p.stem for p in (HERE / "requests" / inbound).glob("*.json")) == sorted(
            ["text", "tools", "thinking", "image"]
        )
    for upstream in UPSTREAMS:
        files = sorted(p.name for p in (HERE / "upstream" / upstream).iterdir())
        assert files == sorted(
            [f"{s}.json" for s in ("text", "tools", "thinking", "usage")]
            + [f"{s}.sse" for s in STREAM_SCENARIOS]
        )
