"""omnirelay.dialects.openai_chat: request checks, the pass-through rewrite and stream metering."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from omnirelay.core.usage import Usage
from omnirelay.dialects.openai_chat import (
    DONE_EVENT,
    StreamMeter,
    client_wants_usage,
    estimate_input_tokens,
    max_output_tokens,
    parse_chat_request,
    text_of_response,
    upstream_body,
    usage_from_response,
    wants_stream,
)
from omnirelay.errors import InvalidRequest

_MSG = [{"role": "user", "content": "Hello, world!"}]


def _raw(body: Any) -> bytes:
    return orjson.dumps(body)


def _invalid(raw: bytes) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse_chat_request(raw)
    assert info.value.http_status == 400
    assert info.value.err_code == -10011
    return info.value


# ---- parse_chat_request -------------------------------------------------------------------------


def test_parse_valid_request_keeps_every_field() -> None:
    body = {
        "model": "gpt-4o",
        "messages": _MSG,
        "stream": True,
        "max_tokens": 0,
        "n": 2,
        "stream_options": {"include_usage": True},
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "vendor_extra": {"x": [1, 2]},
    }
    assert parse_chat_request(_raw(body)) == body


def test_parse_accepts_null_stream_and_options() -> None:
    body = {"model": "m", "messages": _MSG, "stream": None, "stream_options": None, "max_tokens": None}
    assert parse_chat_request(_raw(body)) == body


def test_parse_empty_body() -> None:
    exc = _invalid(b"")
    assert exc.param is None
    assert "empty" in exc.message


@pytest.mark.parametrize("raw", [b"{not json", b"   ", b'{"model": "m",}', b"\xff\xfe", b"{'a': 1}"])
def test_parse_bad_json(raw: bytes) -> None:
    exc = _invalid(raw)
    assert exc.param is None
    assert exc.message.startswith("We could not parse the JSON body of your request")


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null", b"true"])
def test_parse_non_object(raw: bytes) -> None:
    exc = _invalid(raw)
    assert exc.param is None
    assert exc.message == "The request body must be a JSON object."


def test_parse_missing_model() -> None:
    exc = _invalid(_raw({"messages": _MSG}))
    assert exc.param == "model"
    assert exc.message == "you must provide a model parameter"


@pytest.mark.parametrize("model", ["", 5, ["gpt-4o"], {"id": "x"}, True])
def test_parse_invalid_model(model: Any) -> None:
    exc = _invalid(_raw({"model": model, "messages": _MSG}))
    assert exc.param == "model"
    assert exc.message == "'model' must be a non-empty string"


def test_parse_null_model_counts_as_missing() -> None:
    assert _invalid(_raw({"model": None, "messages": _MSG})).param == "model"


def test_parse_missing_messages() -> None:
    exc = _invalid(_raw({"model": "m"}))
    assert exc.param == "messages"
    assert exc.message == "Missing required parameter: 'messages'."


@pytest.mark.parametrize("messages", [[], "hi", {"role": "user"}, 3])
def test_parse_empty_or_invalid_messages(messages: Any) -> None:
    exc = _invalid(_raw({"model": "m", "messages": messages}))
    assert exc.param == "messages"
    assert exc.message == "'messages' must be a non-empty array"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"content": "no role"}], "messages[0]"),
        ([{"role": "user", "content": "ok"}, {"content": "y"}], "messages[1]"),
        ([{"role": "user", "content": "ok"}, {"role": "user"}, "text"], "messages[2]"),
        ([{"role": 5, "content": "x"}], "messages[0]"),
        ([{"role": None}], "messages[0]"),
        ([["role", "user"]], "messages[0]"),
    ],
)
def test_parse_message_without_role(messages: list[Any], param: str) -> None:
    exc = _invalid(_raw({"model": "m", "messages": messages}))
    assert exc.param == param
    assert f"'{param}'" in exc.message


@pytest.mark.parametrize("stream", ["true", 1, 0, [], {}])
def test_parse_non_bool_stream(stream: Any) -> None:
    exc = _invalid(_raw({"model": "m", "messages": _MSG, "stream": stream}))
    assert exc.param == "stream"
    assert exc.message == "'stream' must be a boolean"


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens", "n"])
@pytest.mark.parametrize("value", [-1, 1.5, "10", True, [1]])
def test_parse_bad_counts(field: str, value: Any) -> None:
    exc = _invalid(_raw({"model": "m", "messages": _MSG, field: value}))
    assert exc.param == field
    assert exc.message == f"'{field}' must be a non-negative integer"


@pytest.mark.parametrize("options", ["yes", [], True, 1])
def test_parse_bad_stream_options(options: Any) -> None:
    exc = _invalid(_raw({"model": "m", "messages": _MSG, "stream": True, "stream_options": options}))
    assert exc.param == "stream_options"
    assert exc.message == "'stream_options' must be an object"


def test_parse_checks_model_before_messages() -> None:
    assert _invalid(_raw({"stream": "x"})).param == "model"
    assert _invalid(_raw({"model": "m", "stream": "x"})).param == "messages"


# ---- helpers ------------------------------------------------------------------------------------


def test_wants_stream() -> None:
    assert wants_stream({"stream": True})
    assert not wants_stream({"stream": False})
    assert not wants_stream({})
    assert not wants_stream({"stream": None})


def test_client_wants_usage() -> None:
    assert client_wants_usage({"stream_options": {"include_usage": True}})
    assert not client_wants_usage({"stream_options": {"include_usage": False}})
    assert not client_wants_usage({"stream_options": {"include_usage": "true"}})
    assert not client_wants_usage({"stream_options": {}})
    assert not client_wants_usage({})


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 50}, 50),
        ({"max_completion_tokens": 50, "max_tokens": 100}, 50),
        ({"max_completion_tokens": 0, "max_tokens": 80}, 80),
        ({"max_tokens": 100, "n": 3}, 300),
        ({"max_completion_tokens": 7, "n": 2}, 14),
        ({"max_tokens": 100, "n": 1}, 100),
        ({"max_tokens": 100, "n": 0}, 100),
        ({"max_tokens": 100, "n": "4"}, 100),
        ({}, None),
        ({"max_tokens": 0}, None),
        ({"max_tokens": "100"}, None),
        ({"max_tokens": 12.5}, None),
        ({"n": 4}, None),
    ],
)
def test_max_output_tokens(body: dict[str, Any], expected: int | None) -> None:
    assert max_output_tokens(body) == expected


def test_estimate_input_tokens_messages_only() -> None:
    # 3 framing + 4 per message + "Hello, world!" 6
    assert estimate_input_tokens({"messages": _MSG}) == 13


def test_estimate_input_tokens_with_tools() -> None:
    body = {"messages": _MSG, "tools": [{"type": "function", "function": {"name": "f"}}]}
    # 13 + the compact tools JSON: 20 symbols + type 1 + function 2 + function 2 + name 1 + f 1
    assert estimate_input_tokens(body) == 13 + 27


def test_estimate_input_tokens_of_nothing() -> None:
    assert estimate_input_tokens({}) == 0


# ---- upstream_body ------------------------------------------------------------------------------


def test_upstream_body_same_bytes_when_nothing_changes() -> None:
    raw = b'{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],  "temperature": 0.7}'
    body = parse_chat_request(raw)
    assert upstream_body(raw, body, "gpt-4o") is raw


def test_upstream_body_same_bytes_for_stream_that_asks_usage() -> None:
    raw = _raw({"model": "m", "messages": _MSG, "stream": True, "stream_options": {"include_usage": True}})
    body = parse_chat_request(raw)
    assert upstream_body(raw, body, "m") is raw


def test_upstream_body_rewrites_model_and_keeps_the_rest() -> None:
    original = {
        "model": "gpt-4o",
        "messages": _MSG,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "response_format": {"type": "json_object"},
        "top_k": 40,
        "vendor": {"safe_mode": False, "nested": [1, None, "x"]},
        "temperature": 0.1,
    }
    raw = _raw(original)
    out = upstream_body(raw, parse_chat_request(raw), "openai/gpt-4o-2024-08-06")
    assert out is not raw
    assert orjson.loads(out) == {**original, "model": "openai/gpt-4o-2024-08-06"}
    assert "stream_options" not in orjson.loads(out)


def test_upstream_body_adds_include_usage_to_streams() -> None:
    original = {"model": "m", "messages": _MSG, "stream": True, "logprobs": True}
    raw = _raw(original)
    body = parse_chat_request(raw)
    out = orjson.loads(upstream_body(raw, body, "m"))
    assert out == {**original, "stream_options": {"include_usage": True}}
    assert "stream_options" not in body  # the parsed client body is left alone


def test_upstream_body_keeps_other_stream_options() -> None:
    original = {
        "model": "m",
        "messages": _MSG,
        "stream": True,
        "stream_options": {"include_usage": False, "continuous_usage_stats": True},
    }
    raw = _raw(original)
    body = parse_chat_request(raw)
    out = orjson.loads(upstream_body(raw, body, "up-m"))
    assert out["model"] == "up-m"
    assert out["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert body["stream_options"] == {"include_usage": False, "continuous_usage_stats": True}


def test_upstream_body_null_stream_options_on_a_stream() -> None:
    raw = _raw({"model": "m", "messages": _MSG, "stream": True, "stream_options": None})
    out = orjson.loads(upstream_body(raw, parse_chat_request(raw), "m"))
    assert out["stream_options"] == {"include_usage": True}


def test_upstream_body_non_stream_needs_no_usage_option() -> None:
    raw = _raw({"model": "m", "messages": _MSG, "stream": False})
    assert upstream_body(raw, parse_chat_request(raw), "m") is raw


# ---- non-stream responses -----------------------------------------------------------------------


def test_usage_from_response() -> None:
    data = _raw(
        {
            "id": "x",
            "choices": [],
            "usage": {
                "prompt_tokens": 20,
                "completion_tokens": 5,
                "prompt_tokens_details": {"cached_tokens": 8},
            },
        }
    )
    usage, parsed = usage_from_response(data)
    assert usage == Usage(input_uncached=12, input_cache_read=8, output=5)
    assert parsed is not None
    assert parsed["id"] == "x"


def test_usage_from_response_without_usage() -> None:
    usage, parsed = usage_from_response(b'{"id": "x", "usage": null}')
    assert usage is None
    assert parsed == {"id": "x", "usage": None}


@pytest.mark.parametrize("data", [b"not json", b"[1]", b""])
def test_usage_from_response_garbage(data: bytes) -> None:
    assert usage_from_response(data) == (None, None)


def test_text_of_response() -> None:
    parsed = {
        "choices": [
            {
                "message": {
                    "content": "Hi",
                    "reasoning_content": "think",
                    "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}, "junk"],
                }
            },
            {"message": {"content": None}},
            "junk",
        ]
    }
    assert text_of_response(parsed) == "Hithinkf{}"
    assert text_of_response({}) == ""


# ---- StreamMeter --------------------------------------------------------------------------------


def _event(chunk: Any) -> bytes:
    return b"data: " + orjson.dumps(chunk)


def _delta(content: str) -> bytes:
    return _event({"choices": [{"index": 0, "delta": {"content": content}}]})


_USAGE_CHUNK = _event(
    {
        "choices": [],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "completion_tokens_details": {"reasoning_tokens": 1},
        },
    }
)


def test_meter_passes_content_chunks() -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(_delta("Hi")) is True
    assert meter.usage is None
    assert meter.done is False
    assert meter.error is None


def test_meter_captures_usage_and_drops_usage_only_chunk() -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(_USAGE_CHUNK) is False
    assert meter.usage == Usage(input_uncached=10, output=3, reasoning=1)


def test_meter_keeps_usage_chunk_when_client_asked() -> None:
    meter = StreamMeter(client_wants_usage=True)
    assert meter.feed(_USAGE_CHUNK) is True
    assert meter.usage == Usage(input_uncached=10, output=3, reasoning=1)


def test_meter_keeps_usage_on_a_chunk_with_choices() -> None:
    meter = StreamMeter(client_wants_usage=False)
    event = _event(
        {
            "choices": [{"index": 0, "delta": {"content": "end"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2},
        }
    )
    assert meter.feed(event) is True
    assert meter.usage == Usage(input_uncached=4, output=2)


def test_meter_null_usage_is_not_usage() -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(_event({"choices": [], "usage": None})) is True
    assert meter.usage is None


@pytest.mark.parametrize("event", [DONE_EVENT, b"data: [DONE]", b"data:[DONE]"])
def test_meter_done(event: bytes) -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(event) is True
    assert meter.done is True


def test_meter_error_event() -> None:
    meter = StreamMeter(client_wants_usage=False)
    error = {"message": "boom", "type": "server_error", "code": None}
    assert meter.feed(_event({"error": error})) is True
    assert meter.error == error
    assert meter.done is False


def test_meter_event_with_event_line() -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(b'event: error\ndata: {"error": {"message": "overloaded"}}') is True
    assert meter.error == {"message": "overloaded"}


def test_meter_event_line_and_id_with_content() -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(b'id: 7\nevent: message\ndata: {"choices":[{"delta":{"content":"abcdefgh"}}]}')
    assert meter.final_usage(0) == Usage(input_uncached=0, output=2, estimated=True)


def test_meter_multi_line_data_is_joined() -> None:
    meter = StreamMeter(client_wants_usage=False)
    event = b'data: {"choices":[{"delta":\ndata: {"content":"Hello, world!"}}]}'
    assert meter.feed(event) is True
    assert meter.final_usage(7) == Usage(input_uncached=7, output=6, estimated=True)


def test_meter_multi_line_usage_chunk_dropped() -> None:
    meter = StreamMeter(client_wants_usage=False)
    event = b'data: {"choices": [],\ndata: "usage": {"prompt_tokens": 2, "completion_tokens": 1}}'
    assert meter.feed(event) is False
    assert meter.usage == Usage(input_uncached=2, output=1)


@pytest.mark.parametrize(
    "event", [b": keep-alive", b"event: ping", b"data: not json", b"data: [1, 2]", b"data: 42", b""]
)
def test_meter_ignores_other_events(event: bytes) -> None:
    meter = StreamMeter(client_wants_usage=False)
    assert meter.feed(event) is True
    assert (meter.usage, meter.done, meter.error) == (None, False, None)
    assert meter.final_usage(0) == Usage(estimated=True)


def test_meter_final_usage_prefers_upstream_usage() -> None:
    meter = StreamMeter(client_wants_usage=True)
    meter.feed(_delta("Hello, world!"))
    meter.feed(_USAGE_CHUNK)
    meter.feed(DONE_EVENT)
    usage = meter.final_usage(999)
    assert usage == Usage(input_uncached=10, output=3, reasoning=1)
    assert usage.estimated is False


def test_meter_final_usage_estimates_when_upstream_sent_none() -> None:
    meter = StreamMeter(client_wants_usage=False)
    for piece in ("Hello", ",", " world", "!"):
        meter.feed(_delta(piece))
    meter.feed(DONE_EVENT)
    # "Hello, world!" -> Hello 2 + , 1 + world 2 + ! 1
    assert meter.final_usage(50) == Usage(input_uncached=50, output=6, estimated=True)


def test_meter_counts_reasoning_and_tool_call_deltas() -> None:
    meter = StreamMeter(client_wants_usage=False)
    meter.feed(_event({"choices": [{"delta": {"reasoning_content": "abcd efgh"}}]}))  # 2
    meter.feed(
        _event(
            {
                "choices": [
                    {
                        "delta": {
                            "tool_calls": [
                                {"index": 0, "function": {"name": "lookup", "arguments": None}},
                                {"index": 0, "function": {"arguments": "12345"}},
                                "junk",
                            ]
                        }
                    },
                    "junk",
                    {"delta": None},
                ]
            }
        )
    )
    # joined text: "abcd efgh" + "lookup" + "12345" -> abcd 1, efghlookup 3, 12345 2
    assert meter.final_usage(1) == Usage(input_uncached=1, output=6, estimated=True)


def test_meter_text_is_joined_across_chunks() -> None:
    meter = StreamMeter(client_wants_usage=False)
    meter.feed(_delta("abc"))
    meter.feed(_delta("de"))  # "abcde" is one run of 5 letters: 2 tokens, not 1 + 1
    assert meter.final_usage(0).output == 2
