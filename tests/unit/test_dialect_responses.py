"""omnirelay.dialects.openai_responses: the Responses API as an inbound dialect, checked against the
openai SDK's own models (``openai.types.responses``) and its streaming helper."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from omnirelay.core.chat import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    ImagePart,
    Message,
    Part,
    StreamError,
    StreamEvent,
    StreamFinish,
    StreamStart,
    StreamUsage,
    TextDelta,
    TextPart,
    ThinkingDelta,
    ThinkingPart,
    ToolCallDelta,
    ToolCallPart,
    ToolCallStart,
    ToolChoice,
    ToolDef,
    ToolResultPart,
)
from omnirelay.core.usage import Usage
from omnirelay.dialects import registry
from omnirelay.dialects.base import InboundDialect, StreamRenderer
from omnirelay.dialects.openai_responses import REDACTED_PREFIX, ResponsesInbound
from omnirelay.errors import InvalidRequest
from tests.unit.test_dialect_openai_convert import JPEG, PNG, sdk_client

DIALECT = ResponsesInbound()
EVENT = TypeAdapter[Any](ResponseStreamEvent)
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def _parse(body: dict[str, Any]) -> ChatRequest:
    return DIALECT.parse(body, model="pub")


def _invalid(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        _parse(body)
    assert info.value.http_status == 400
    return info.value


def test_satisfies_the_inbound_protocol() -> None:
    dialect: InboundDialect = DIALECT
    renderer: StreamRenderer = DIALECT.stream_renderer(
        model="m", response_id="r", created=0, include_usage=False
    )
    assert dialect.name == "openai_responses"
    assert renderer.close().startswith(b"event: response.created\n")
    assert isinstance(registry.inbound("openai_responses"), ResponsesInbound)


# ---- parse ---------------------------------------------------------------------------------------


def test_parse_string_input_and_instructions() -> None:
    request = _parse({"model": "x", "input": "Hello", "instructions": "Be nice.", "store": True})
    assert request.model == "pub"
    assert request.system == [TextPart("Be nice.")]
    assert request.messages == [Message("user", [TextPart("Hello")])]


def test_parse_item_list_with_a_whole_tool_loop() -> None:
    body = {
        "instructions": "Top rule.",
        "input": [
            {"role": "developer", "content": "Dev rule."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Weather here?"},
                    {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}", "detail": "high"},
                    {"type": "input_image", "image_url": "https://example.com/a.jpg"},
                ],
            },
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Need the tool."}],
                "encrypted_content": "sig-1",
            },
            {
                "type": "reasoning",
                "id": "rs_2",
                "summary": [],
                "encrypted_content": REDACTED_PREFIX + "opaque",
            },
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {
                "type": "function_call",
                "id": "fc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Oslo"}',
                "status": "completed",
            },
            {
                "type": "function_call",
                "call_id": "call_2",
                "name": "get_weather",
                "arguments": '{"city":"Rome"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "cold"},
            {
                "type": "function_call_output",
                "call_id": "call_2",
                "output": [
                    {"type": "input_text", "text": "warm"},
                    {"type": "input_image", "image_url": f"data:image/jpeg;base64,{JPEG}"},
                ],
            },
            {"role": "user", "content": "Thanks, and tomorrow?"},
        ],
    }
    request = _parse(body)
    assert request.system == [TextPart("Top rule."), TextPart("Dev rule.")]
    assert request.messages == [
        Message(
            "user",
            [
                TextPart("Weather here?"),
                ImagePart(media_type="image/png", data=PNG, detail="high"),
                ImagePart(url="https://example.com/a.jpg"),
            ],
        ),
        Message(
            "assistant",
            [
                ThinkingPart(text="Need the tool.", signature="sig-1"),
                ThinkingPart(redacted="opaque"),
                TextPart("Checking."),
                ToolCallPart("call_1", "get_weather", '{"city":"Oslo"}'),
                ToolCallPart("call_2", "get_weather", '{"city":"Rome"}'),
            ],
        ),
        Message(
            "user",
            [
                ToolResultPart("call_1", [TextPart("cold")], name="get_weather"),
                ToolResultPart(
                    "call_2",
                    [TextPart("warm"), ImagePart(media_type="image/jpeg", data=JPEG)],
                    name="get_weather",
                ),
                TextPart("Thanks, and tomorrow?"),
            ],
        ),
    ]


def test_parse_settings() -> None:
    request = _parse(
        {
            "input": "x",
            "tools": [WEATHER, {"type": "function", "name": "noop"}],
            "tool_choice": {"type": "function", "name": "get_weather"},
            "parallel_tool_calls": False,
            "max_output_tokens": 300,
            "temperature": 0.3,
            "top_p": 0.8,
            "reasoning": {"effort": "high", "summary": "auto"},
            "text": {
                "format": {
                    "type": "json_schema",
                    "name": "weather",
                    "schema": {"type": "object"},
                    "strict": True,
                }
            },
            "stream": True,
            "metadata": {"k": "v"},
            "user": "u1",
            "include": ["reasoning.encrypted_content"],
            "truncation": "disabled",
        }
    )
    assert request.tools == [
        ToolDef("get_weather", "Weather for a city", WEATHER["parameters"]),
        ToolDef("noop", None, {"type": "object", "properties": {}}),
    ]
    assert request.tool_choice == ToolChoice("tool", "get_weather")
    assert request.parallel_tool_calls is False
    assert (request.max_tokens, request.temperature, request.top_p) == (300, 0.3, 0.8)
    assert request.reasoning_effort == "high"
    assert request.response_format == {
        "type": "json_schema",
        "name": "weather",
        "schema": {"type": "object"},
        "strict": True,
    }
    assert request.stream is True and request.metadata == {"k": "v"} and request.user == "u1"


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({"tool_choice": "required"}, lambda r: r.tool_choice == ToolChoice("required")),
        ({"tool_choice": "none"}, lambda r: r.tool_choice == ToolChoice("none")),
        ({"reasoning": {"effort": "none"}}, lambda r: r.reasoning_enabled is False),
        ({"reasoning": {"effort": "minimal"}}, lambda r: r.reasoning_effort == "low"),
        ({"text": {"format": {"type": "text"}}}, lambda r: r.response_format is None),
        (
            {"text": {"format": {"type": "json_object"}}},
            lambda r: r.response_format == {"type": "json_object"},
        ),
        ({"safety_identifier": "hash"}, lambda r: r.user == "hash"),
        ({"previous_response_id": None}, lambda r: True),
    ],
)
def test_parse_setting_variants(fields: dict[str, Any], check: Any) -> None:
    assert check(_parse({"input": "x", **fields}))


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (
            {"input": "x", "previous_response_id": "resp_123"},
            "previous_response_id",
            "previous_response_id needs stored responses, which this gateway does not keep; "
            "send the full input",
        ),
        ({"input": "x", "conversation": "conv_1"}, "conversation", "does not keep"),
        ({"input": "x", "prompt": {"id": "pmpt_1"}}, "prompt", "templates"),
        ({"input": "x", "background": True}, "background", "does not keep"),
        ({"model": "m"}, "input", "'input'"),
        ({"input": []}, "input", "non-empty"),
        ({"input": 5}, "input", "string"),
        (
            {"input": "x", "tools": [{"type": "web_search"}]},
            "tools[0].type",
            "not supported through translation",
        ),
        (
            {"input": "x", "tools": [{"type": "file_search", "vector_store_ids": []}]},
            "tools[0].type",
            "function",
        ),
        ({"input": "x", "tools": [{"type": "function"}]}, "tools[0].name", "name"),
        ({"input": "x", "tool_choice": {"type": "web_search_preview"}}, "tool_choice", "tool_choice"),
        ({"input": "x", "reasoning": {"effort": "extreme"}}, "reasoning.effort", "one of"),
        ({"input": "x", "text": {"format": {"type": "json_schema"}}}, "text.format.name", "name"),
        ({"input": "x", "text": {"format": {"type": "grammar"}}}, "text.format.type", "json_schema"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type", "stored items"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type", "not supported"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role", "tool"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file-1"}]}]},
            "input[0].content[0].type",
            "input_file content cannot be translated",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file-1"}]}]},
            "input[0].content[0].file_id",
            "uploaded files",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "file:///etc"}]}]},
            "input[0].content[0].image_url",
            "http(s) URL",
        ),
        (
            {"input": [{"role": "system", "content": [{"type": "input_image", "image_url": "https://x"}]}]},
            "input[0].content[0].type",
            "cannot be translated",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "call_id",
        ),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id", "call_id"),
        ({"input": [{"type": "reasoning", "summary": [{"text": 1}]}]}, "input[0].summary[0].text", "string"),
    ],
)
def test_parse_refusals(body: dict[str, Any], param: str, fragment: str) -> None:
    exc = _invalid(body)
    assert exc.param == param
    assert fragment in exc.message


# ---- render --------------------------------------------------------------------------------------

REQUEST = ChatRequest(
    model="pub",
    messages=[Message("user", [TextPart("hi")])],
    system=[TextPart("Be brief.")],
    tools=[ToolDef("get_weather", "Weather", {"type": "object"})],
    tool_choice=ToolChoice("auto"),
    max_tokens=500,
    temperature=0.4,
    reasoning_effort="medium",
    response_format={"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True},
    metadata={"a": "b"},
)
USAGE = Usage(input_uncached=30, input_cache_read=70, input_cache_write=10, output=50, reasoning=20)


def _response(parts: list[Part], finish: FinishReason = "stop") -> ChatResponse:
    return ChatResponse(
        id="msg_01XYZ", model="claude-x", parts=parts, finish_reason=finish, usage=USAGE, created=1700
    )


def test_render_every_kind_of_output_item() -> None:
    response = _response(
        [
            ThinkingPart(text="Plan.", signature="sig-9"),
            ThinkingPart(redacted="opaque"),
            TextPart("Here "),
            TextPart("it is."),
            ToolCallPart("toolu_1", "get_weather", '{"city":"Oslo"}'),
            TextPart("And more."),
        ],
        finish="tool_calls",
    )
    rendered = DIALECT.render(response, model="pub-model", request=REQUEST)
    parsed = Response.model_validate(rendered)
    assert parsed.output_text == "Here it is.And more."
    assert rendered["id"] == "resp_msg_01XYZ" and rendered["object"] == "response"
    assert rendered["status"] == "completed" and rendered["incomplete_details"] is None
    assert rendered["model"] == "pub-model" and rendered["created_at"] == 1700
    assert rendered["output"] == [
        {
            "id": "rs_msg_01XYZ_0",
            "type": "reasoning",
            "summary": [{"type": "summary_text", "text": "Plan."}],
            "encrypted_content": "sig-9",
        },
        {
            "id": "rs_msg_01XYZ_1",
            "type": "reasoning",
            "summary": [],
            "encrypted_content": REDACTED_PREFIX + "opaque",
        },
        {
            "id": "msg_msg_01XYZ_2",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "Here it is.", "annotations": []}],
        },
        {
            "id": "fc_msg_01XYZ_3",
            "type": "function_call",
            "call_id": "toolu_1",
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
            "status": "completed",
        },
        {
            "id": "msg_msg_01XYZ_4",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [{"type": "output_text", "text": "And more.", "annotations": []}],
        },
    ]
    assert rendered["usage"] == {
        "input_tokens": 110,
        "input_tokens_details": {"cached_tokens": 70, "cache_write_tokens": 10},
        "output_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 20},
        "total_tokens": 160,
    }
    # the echoed request settings
    assert rendered["instructions"] == "Be brief."
    assert rendered["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object"},
            "strict": None,
        }
    ]
    assert rendered["tool_choice"] == "auto" and rendered["parallel_tool_calls"] is True
    assert (rendered["temperature"], rendered["top_p"], rendered["max_output_tokens"]) == (0.4, 1.0, 500)
    assert rendered["reasoning"] == {"effort": "medium", "summary": None}
    assert rendered["text"] == {
        "format": {"type": "json_schema", "name": "w", "schema": {"type": "object"}, "strict": True}
    }
    assert rendered["metadata"] == {"a": "b"}


def test_render_without_the_request_still_validates() -> None:
    rendered = DIALECT.render(_response([TextPart("x")]), model="m")
    Response.model_validate(rendered)
    assert rendered["tools"] == [] and rendered["tool_choice"] == "auto" and rendered["instructions"] is None
    assert DIALECT.render(ChatResponse("resp_keep", "m", [], "stop", Usage()), model="m")["id"] == "resp_keep"


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        ("stop_sequence", "completed", None),
        ("tool_calls", "completed", None),
        ("error", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_render_status_table(finish: FinishReason, status: str, reason: str | None) -> None:
    rendered = DIALECT.render(_response([TextPart("x")], finish), model="m")
    Response.model_validate(rendered)
    assert rendered["status"] == status
    assert rendered["incomplete_details"] == ({"reason": reason} if reason else None)
    assert rendered["output"][0]["status"] == status


def test_rendered_output_fed_back_as_input_gives_the_same_assistant_turn() -> None:
    parts: list[Part] = [
        ThinkingPart(text="Plan.", signature="sig-9"),
        ThinkingPart(redacted="opaque"),
        TextPart("Calling."),
        ToolCallPart("toolu_1", "get_weather", '{"city":"Oslo"}'),
        ToolCallPart("toolu_2", "get_weather", '{"city":"Rome"}'),
    ]
    rendered = DIALECT.render(_response(parts, "tool_calls"), model="m")
    body = {
        "input": [
            {"role": "user", "content": "weather?"},
            *rendered["output"],
            {"type": "function_call_output", "call_id": "toolu_1", "output": "cold"},
            {"type": "function_call_output", "call_id": "toolu_2", "output": "warm"},
        ]
    }
    request = _parse(body)
    assert request.messages[1] == Message("assistant", parts)
    assert request.messages[2] == Message(
        "user",
        [
            ToolResultPart("toolu_1", [TextPart("cold")], name="get_weather"),
            ToolResultPart("toolu_2", [TextPart("warm")], name="get_weather"),
        ],
    )


# ---- streaming -----------------------------------------------------------------------------------


def sse(raw: bytes) -> list[dict[str, Any]]:
    """Split Responses SSE bytes; each event's ``event:`` name must equal its data's ``type``."""
    assert raw.endswith(b"\n\n")
    out = []
    for block in raw.split(b"\n\n")[:-1]:
        name_line, data_line = block.split(b"\n")
        assert name_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == name_line[7:].decode()
        out.append(data)
    return out


def render_stream(events: list[StreamEvent], request: ChatRequest | None = REQUEST) -> list[dict[str, Any]]:
    renderer = DIALECT.stream_renderer(
        model="pub-model", response_id="req-42", created=1700, include_usage=False, request=request
    )
    raw = b"".join(renderer.event(e) for e in events) + renderer.close()
    assert renderer.close() == b""
    out = sse(raw)
    for event in out:
        EVENT.validate_python(event)  # every event is one the SDK's models accept
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


STREAM: list[StreamEvent] = [
    StreamStart("msg_1", "claude"),
    ThinkingDelta(text="Let me "),
    ThinkingDelta(text="think."),
    ThinkingDelta(signature="sig-1"),
    ThinkingDelta(redacted="opaque"),
    TextDelta("Checking "),
    TextDelta("both."),
    ToolCallStart(0, "toolu_a", "get_weather"),
    ToolCallDelta(0, '{"ci'),
    ToolCallStart(1, "toolu_b", "get_time"),
    ToolCallDelta(1, "{"),
    ToolCallDelta(0, 'ty":"Oslo"}'),  # a late fragment of the first call
    ToolCallDelta(1, "}"),
    StreamUsage(USAGE),
    StreamFinish("tool_calls"),
]


def test_stream_event_sequence() -> None:
    events = render_stream(STREAM)
    types = [e["type"] for e in events]
    assert types == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning 0
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",  # redacted reasoning 1
        "response.output_item.done",
        "response.output_item.added",  # message 2
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # call 3
        "response.function_call_arguments.delta",
        "response.output_item.added",  # call 4
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    created = events[0]["response"]
    assert created["id"] == "resp_req-42" and created["status"] == "in_progress" and created["output"] == []
    assert created["usage"] is None and created["instructions"] == "Be brief."
    deltas: dict[int, str] = {}
    for e in events:
        if e["type"] == "response.function_call_arguments.delta":
            deltas[e["output_index"]] = deltas.get(e["output_index"], "") + e["delta"]
    assert deltas == {3: '{"city":"Oslo"}', 4: "{}"}
    done = {
        e["output_index"]: e["arguments"]
        for e in events
        if e["type"] == "response.function_call_arguments.done"
    }
    assert done == deltas
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["usage"]["input_tokens"] == 110 and final["usage"]["output_tokens"] == 50
    assert [item["type"] for item in final["output"]] == [
        "reasoning",
        "reasoning",
        "message",
        "function_call",
        "function_call",
    ]
    assert final["output"][0]["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert final["output"][0]["encrypted_content"] == "sig-1"
    assert final["output"][1]["encrypted_content"] == REDACTED_PREFIX + "opaque"
    assert final["output"][2]["content"][0]["text"] == "Checking both."
    assert [(i["call_id"], i["name"], i["arguments"]) for i in final["output"][3:]] == [
        ("toolu_a", "get_weather", '{"city":"Oslo"}'),
        ("toolu_b", "get_time", "{}"),
    ]
    # the streamed final object equals the whole-response rendering of the same turn
    whole = DIALECT.render(
        ChatResponse(
            "req-42",
            "claude",
            [
                ThinkingPart("Let me think.", signature="sig-1"),
                ThinkingPart(redacted="opaque"),
                TextPart("Checking both."),
                ToolCallPart("toolu_a", "get_weather", '{"city":"Oslo"}'),
                ToolCallPart("toolu_b", "get_time", "{}"),
            ],
            "tool_calls",
            USAGE,
            created=1700,
        ),
        model="pub-model",
        request=REQUEST,
    )
    assert final == {**whole, "output": final["output"]}
    assert [{k: v for k, v in i.items() if k != "id"} for i in final["output"]] == [
        {k: v for k, v in i.items() if k != "id"} for i in whole["output"]
    ]


def test_stream_text_item_indices_and_incomplete_end() -> None:
    events = render_stream(
        [TextDelta("a"), TextDelta(""), ThinkingDelta(), TextDelta("b"), StreamFinish("length")], request=None
    )
    text_events = [e for e in events if e["type"].startswith("response.output_text")]
    assert all(e["output_index"] == 0 and e["content_index"] == 0 for e in text_events)
    assert [e.get("delta") for e in text_events] == ["a", "b", None]
    last = events[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["status"] == "incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"


def test_stream_thinking_after_text_opens_a_new_item_and_signature_seals_one() -> None:
    events = render_stream(
        [
            ThinkingDelta(text="one"),
            ThinkingDelta(signature="s1"),
            ThinkingDelta(text="two"),
            TextDelta("answer"),
            ThinkingDelta(text="three"),
            ThinkingDelta(signature="s3"),
            ThinkingDelta(signature="s4"),  # a signature with no text: an item of its own
        ]
    )
    final = events[-1]["response"]["output"]
    assert [(i["type"], i.get("encrypted_content")) for i in final] == [
        ("reasoning", "s1"),
        ("reasoning", None),
        ("message", None),
        ("reasoning", "s3"),
        ("reasoning", "s4"),
    ]
    assert [i["summary"] for i in final if i["type"] == "reasoning"][:2] == [
        [{"type": "summary_text", "text": "one"}],
        [{"type": "summary_text", "text": "two"}],
    ]


def test_stream_arguments_without_a_start_are_kept() -> None:
    events = render_stream([ToolCallDelta(2, '{"x":1}'), StreamFinish("tool_calls")])
    final = events[-1]["response"]["output"]
    assert final == [
        {
            "id": "fc_req-42_0",
            "type": "function_call",
            "call_id": "call_2",
            "name": "",
            "arguments": '{"x":1}',
            "status": "completed",
        }
    ]


def test_stream_error_then_failed() -> None:
    renderer = DIALECT.stream_renderer(model="m", response_id="resp_7", created=1, include_usage=True)
    raw = renderer.event(TextDelta("partial")) + renderer.error("upstream went away", "upstream_error")
    events = sse(raw)
    for event in events:
        EVENT.validate_python(event)
    assert [e["type"] for e in events[-2:]] == ["error", "response.failed"]
    assert events[-2]["message"] == "upstream went away" and events[-2]["code"] == "upstream_error"
    failed = events[-1]["response"]
    assert failed["status"] == "failed" and failed["id"] == "resp_7"
    assert failed["error"]["code"] == "server_error" and failed["error"]["message"] == "upstream went away"
    assert (
        renderer.event(TextDelta("late")) == b""
        and renderer.close() == b""
        and renderer.error("x", "y") == b""
    )
    fresh = DIALECT.stream_renderer(model="m", response_id="r", created=1, include_usage=True)
    kinds = [e["type"] for e in sse(fresh.event(StreamError("slow down", "rate_limit_error")))]
    assert kinds == ["response.created", "response.in_progress", "error", "response.failed"]


async def test_stream_through_the_openai_sdk_stream_helper() -> None:
    renderer = DIALECT.stream_renderer(
        model="pub-model", response_id="req-9", created=1700, include_usage=False, request=REQUEST
    )
    raw = b"".join(renderer.event(e) for e in STREAM) + renderer.close()
    async with sdk_client(raw) as client:
        async with client.responses.stream(model="pub-model", input="weather?") as stream:
            seen = [event.type async for event in stream]
            final = await stream.get_final_response()
        raw_events = [
            e async for e in await client.responses.create(model="pub-model", input="x", stream=True)
        ]
    assert seen[0] == "response.created" and seen[-1] == "response.completed"
    assert final.output_text == "Checking both."
    calls = [(i.call_id, i.name, i.arguments) for i in final.output if i.type == "function_call"]
    assert calls == [("toolu_a", "get_weather", '{"city":"Oslo"}'), ("toolu_b", "get_time", "{}")]
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens == 70
    assert len(raw_events) == len(seen)


async def test_render_through_the_openai_sdk() -> None:
    rendered = DIALECT.render(
        _response([TextPart("hello"), ToolCallPart("c", "f", "{}")]), model="m", request=REQUEST
    )
    async with sdk_client(json.dumps(rendered).encode(), "application/json") as client:
        response = await client.responses.create(model="m", input="x")
    assert response.output_text == "hello"
    assert response.usage is not None and response.usage.total_tokens == 160
