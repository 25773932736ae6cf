"""omnirelay.dialects.gemini: parse, render, stream rendering, to_body, from_body, stream parsing."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from omnirelay.core.chat import (
    ChatRequest,
    ChatResponse,
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
from omnirelay.dialects.gemini import (
    FINISH_FROM_GEMINI,
    FINISH_TO_GEMINI,
    PLACEHOLDER_SIGNATURE,
    GeminiInbound,
    GeminiStreamParser,
    GeminiUpstream,
    error_body,
    finish_from_gemini,
    models_list,
    openapi_to_json_schema,
    passthrough_body,
    usage_from_gemini,
    usage_to_gemini,
)
from omnirelay.errors import InvalidRequest

INBOUND = GeminiInbound()
UPSTREAM = GeminiUpstream()
MODEL = "gemini-2.5-flash"
PNG = "iVBORw0KGgo="
WEATHER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def _parse(body: dict[str, Any]) -> ChatRequest:
    return INBOUND.parse(body, model=MODEL)


def _invalid(body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        _parse(body)
    assert info.value.http_status == 400
    return info.value


def _chunks(data: bytes) -> list[dict[str, Any]]:
    """The JSON payloads of rendered SSE bytes (each event must be exactly ``data: <json>``)."""
    out = []
    for event in data.split(b"\n\n"):
        if event:
            assert event.startswith(b"data: ") and b"\n" not in event
            out.append(orjson.loads(event[6:]))
    return out


# ---- parse -------------------------------------------------------------------------------------


def test_parse_text_system_and_generation_config() -> None:
    request = _parse(
        {
            "contents": [_user("Hello"), {"role": "model", "parts": [{"text": "Hi!"}]}, _user("Weather?")],
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Be kind."}]},
            "generationConfig": {
                "temperature": 0.5,
                "topP": 0.9,
                "topK": 40,
                "maxOutputTokens": 256,
                "stopSequences": ["END"],
                "candidateCount": 2,
                "seed": 7,
                "presencePenalty": 0.1,  # not carried
            },
            "safetySettings": [{"category": "HARM_CATEGORY_HATE_SPEECH", "threshold": "BLOCK_NONE"}],
        }
    )
    assert request.model == MODEL
    assert request.stream is False
    assert [m.role for m in request.messages] == ["user", "assistant", "user"]
    assert request.messages[2].parts == [TextPart("Weather?")]
    assert request.system == [TextPart("Be brief."), TextPart("Be kind.")]
    assert (request.temperature, request.top_p, request.top_k) == (0.5, 0.9, 40)
    assert (request.max_tokens, request.stop, request.n, request.seed) == (256, ["END"], 2, 7)
    assert request.response_format is None
    assert request.tools == [] and request.tool_choice is None


def test_parse_system_instruction_as_a_string_and_missing_role() -> None:
    request = _parse({"contents": [{"parts": [{"text": "hi"}]}], "system_instruction": "Be brief."})
    assert request.system == [TextPart("Be brief.")]
    assert request.messages[0].role == "user"


CAMEL: dict[str, Any] = {
    "contents": [
        _user("Weather in Paris?"),
        {
            "role": "model",
            "parts": [
                {"text": "Let me think", "thought": True, "thoughtSignature": "c2ln"},
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
            ],
        },
    ],
    "systemInstruction": {"parts": [{"text": "sys"}]},
    "tools": [{"functionDeclarations": [{"name": "get_weather", "parametersJsonSchema": WEATHER_SCHEMA}]}],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
    "generationConfig": {
        "maxOutputTokens": 100,
        "topP": 0.5,
        "stopSequences": ["x"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
        "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": True},
    },
}
SNAKE: dict[str, Any] = {
    "contents": [
        _user("Weather in Paris?"),
        {
            "role": "model",
            "parts": [
                {"text": "Let me think", "thought": True, "thought_signature": "c2ln"},
                {"function_call": {"name": "get_weather", "args": {"city": "Paris"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"function_response": {"name": "get_weather", "response": {"temp": 21}}},
                {"inline_data": {"mime_type": "image/png", "data": PNG}},
            ],
        },
    ],
    "system_instruction": {"parts": [{"text": "sys"}]},
    "tools": [{"function_declarations": [{"name": "get_weather", "parameters_json_schema": WEATHER_SCHEMA}]}],
    "tool_config": {"function_calling_config": {"mode": "ANY", "allowed_function_names": ["get_weather"]}},
    "generation_config": {
        "max_output_tokens": 100,
        "top_p": 0.5,
        "stop_sequences": ["x"],
        "response_mime_type": "application/json",
        "response_json_schema": {"type": "object"},
        "thinking_config": {"thinking_budget": 512, "include_thoughts": True},
    },
}


def test_parse_camel_case_and_snake_case_agree() -> None:
    camel, snake = _parse(CAMEL), _parse(SNAKE)
    assert camel == snake
    assert camel.messages[1].parts == [
        ThinkingPart(text="Let me think", signature="c2ln"),
        ToolCallPart(id="call_0", name="get_weather", arguments='{"city":"Paris"}'),
    ]
    assert camel.messages[2].parts == [
        ToolResultPart(tool_call_id="call_0", content=[TextPart('{"temp":21}')], name="get_weather"),
        ImagePart(media_type="image/png", data=PNG),
    ]
    assert camel.tools == [ToolDef("get_weather", None, WEATHER_SCHEMA)]
    assert camel.tool_choice == ToolChoice("tool", "get_weather")
    assert (camel.max_tokens, camel.top_p, camel.stop) == (100, 0.5, ["x"])
    assert camel.response_format == {"type": "json_schema", "name": "response", "schema": {"type": "object"}}
    assert (camel.reasoning_enabled, camel.reasoning_budget) == (True, 512)


def test_parse_synthesizes_call_ids_and_matches_responses_by_name_order() -> None:
    request = _parse(
        {
            "contents": [
                _user("go"),
                {
                    "role": "model",
                    "parts": [
                        {"functionCall": {"name": "get_weather", "args": {"city": "A"}}},
                        {"functionCall": {"name": "get_time"}},
                        {"functionCall": {"name": "get_weather", "args": {"city": "B"}}},
                    ],
                },
                {
                    "role": "user",
                    "parts": [
                        {"functionResponse": {"name": "get_time", "response": {"t": 1}}},
                        {"functionResponse": {"name": "get_weather", "response": {"w": "A"}}},
                        {"functionResponse": {"name": "get_weather", "response": {"w": "B"}}},
                    ],
                },
                {"role": "model", "parts": [{"functionCall": {"name": "get_time", "args": {}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_time", "response": {}}}]},
            ]
        }
    )
    calls = [p for m in request.messages for p in m.parts if isinstance(p, ToolCallPart)]
    results = [p for m in request.messages for p in m.parts if isinstance(p, ToolResultPart)]
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_0", "get_weather", '{"city":"A"}'),
        ("call_1", "get_time", "{}"),
        ("call_2", "get_weather", '{"city":"B"}'),
        ("call_3", "get_time", "{}"),
    ]
    assert [(r.tool_call_id, r.content[0]) for r in results] == [
        ("call_1", TextPart('{"t":1}')),
        ("call_0", TextPart('{"w":"A"}')),
        ("call_2", TextPart('{"w":"B"}')),
        ("call_3", TextPart("{}")),
    ]


def test_parse_keeps_given_call_ids() -> None:
    request = _parse(
        {
            "contents": [
                _user("go"),
                {"role": "model", "parts": [{"functionCall": {"id": "fc_9", "name": "f", "args": {}}}]},
                {
                    "role": "user",
                    "parts": [{"functionResponse": {"id": "fc_9", "name": "f", "response": {}}}],
                },
            ]
        }
    )
    assert request.messages[1].parts == [ToolCallPart(id="fc_9", name="f", arguments="{}")]
    result = request.messages[2].parts[0]
    assert isinstance(result, ToolResultPart) and result.tool_call_id == "fc_9"


def test_parse_function_response_errors_and_images() -> None:
    request = _parse(
        {
            "contents": [
                _user("go"),
                {"role": "model", "parts": [{"functionCall": {"name": "shot"}}]},
                {
                    "role": "user",
                    "parts": [
                        {
                            "functionResponse": {
                                "name": "shot",
                                "response": {"error": "camera offline"},
                                "parts": [{"inlineData": {"mimeType": "image/jpeg", "data": PNG}}],
                            }
                        }
                    ],
                },
            ]
        }
    )
    result = request.messages[2].parts[0]
    assert result == ToolResultPart(
        tool_call_id="call_0",
        content=[TextPart('{"error":"camera offline"}'), ImagePart(media_type="image/jpeg", data=PNG)],
        is_error=True,
        name="shot",
    )


def test_parse_thought_parts_merge_and_signatures_stay_with_their_part() -> None:
    request = _parse(
        {
            "contents": [
                _user("q"),
                {
                    "role": "model",
                    "parts": [
                        {"text": "first ", "thought": True},
                        {"text": "second", "thought": True},
                        {"text": "", "thought": True, "thoughtSignature": "U0lHMQ=="},
                        {"text": "next block", "thought": True},
                        {"text": "answer", "thoughtSignature": "U0lHMg=="},
                        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "U0lHMw=="},
                        {"text": "", "thoughtSignature": "U0lHNA=="},
                    ],
                },
            ]
        }
    )
    assert request.messages[1].parts == [
        ThinkingPart(text="first second", signature="U0lHMQ=="),
        ThinkingPart(text="next block"),
        ThinkingPart(text="", signature="U0lHMg=="),
        TextPart("answer"),
        ThinkingPart(text="", signature="U0lHMw=="),
        ToolCallPart(id="call_0", name="f", arguments="{}"),
        ThinkingPart(text="", signature="U0lHNA=="),
    ]


def test_parse_drops_empty_unsigned_thoughts() -> None:
    request = _parse(
        {
            "contents": [
                _user("q"),
                {"role": "model", "parts": [{"text": "", "thought": True}]},
                {"role": "model", "parts": [{"text": "", "thought": True}, {"text": "a"}]},
            ]
        }
    )
    assert [m.parts for m in request.messages] == [[TextPart("q")], [TextPart("a")]]


def test_parse_images_inline_and_by_uri() -> None:
    request = _parse(
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [
                        {"text": "Compare"},
                        {"inlineData": {"mimeType": "image/webp", "data": PNG}},
                        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/a.jpg"}},
                        {"executableCode": {"language": "PYTHON", "code": "print(1)"}},  # not carried
                    ],
                }
            ]
        }
    )
    assert request.messages[0].parts == [
        TextPart("Compare"),
        ImagePart(media_type="image/webp", data=PNG),
        ImagePart(media_type="image/jpeg", url="https://example.com/a.jpg"),
    ]


def test_parse_tools_schema_conversion_and_ignored_google_tools() -> None:
    request = _parse(
        {
            "contents": [_user("hi")],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "lookup",
                            "description": "Find things",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {
                                    "q": {"type": "STRING", "nullable": True},
                                    "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "max_items": 3},
                                },
                                "required": ["q"],
                                "propertyOrdering": ["q", "tags"],
                            },
                        },
                        {"name": "ping"},
                    ]
                },
                {"googleSearch": {}},
            ],
            "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        }
    )
    assert request.tools == [
        ToolDef(
            "lookup",
            "Find things",
            {
                "type": "object",
                "properties": {
                    "q": {"type": ["string", "null"]},
                    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                },
                "required": ["q"],
            },
        ),
        ToolDef("ping", None, {"type": "object", "properties": {}}),
    ]
    assert request.tool_choice == ToolChoice("auto")


@pytest.mark.parametrize(
    ("config", "choice", "names"),
    [
        ({"mode": "AUTO"}, ToolChoice("auto"), ["a", "b", "c"]),
        ({"mode": "NONE"}, ToolChoice("none"), ["a", "b", "c"]),
        ({"mode": "ANY"}, ToolChoice("required"), ["a", "b", "c"]),
        ({"mode": "ANY", "allowedFunctionNames": ["b"]}, ToolChoice("tool", "b"), ["a", "b", "c"]),
        ({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}, ToolChoice("required"), ["a", "c"]),
        ({"mode": "VALIDATED"}, ToolChoice("auto"), ["a", "b", "c"]),
    ],
)
def test_parse_function_calling_modes(config: dict[str, Any], choice: ToolChoice, names: list[str]) -> None:
    request = _parse(
        {
            "contents": [_user("hi")],
            "tools": [{"functionDeclarations": [{"name": n} for n in ("a", "b", "c")]}],
            "toolConfig": {"functionCallingConfig": config},
        }
    )
    assert request.tool_choice == choice
    assert [t.name for t in request.tools] == names


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"responseMimeType": "application/json"}, {"type": "json_object"}),
        (
            {"responseMimeType": "application/json", "responseSchema": {"type": "OBJECT", "properties": {}}},
            {"type": "json_schema", "name": "response", "schema": {"type": "object", "properties": {}}},
        ),
        (
            {"responseMimeType": "application/json", "_responseJsonSchema": {"type": "array"}},
            {"type": "json_schema", "name": "response", "schema": {"type": "array"}},
        ),
        ({"responseMimeType": "text/plain"}, None),
    ],
)
def test_parse_response_format(config: dict[str, Any], expected: dict[str, Any] | None) -> None:
    assert _parse({"contents": [_user("hi")], "generationConfig": config}).response_format == expected


@pytest.mark.parametrize(
    ("thinking", "enabled", "budget", "effort"),
    [
        ({"thinkingBudget": 0}, False, None, None),
        ({"thinkingBudget": -1}, True, None, None),
        ({"thinkingBudget": 2048}, True, 2048, None),
        ({"thinkingLevel": "HIGH"}, None, None, "high"),
        ({"thinkingLevel": "minimal"}, None, None, "low"),
        ({"includeThoughts": True}, True, None, None),
        ({"includeThoughts": False}, None, None, None),
    ],
)
def test_parse_thinking_config(
    thinking: dict[str, Any], enabled: bool | None, budget: int | None, effort: str | None
) -> None:
    request = _parse({"contents": [_user("hi")], "generationConfig": {"thinkingConfig": thinking}})
    assert (request.reasoning_enabled, request.reasoning_budget, request.reasoning_effort) == (
        enabled,
        budget,
        effort,
    )


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "contents"),
        ({"contents": []}, "contents"),
        ({"contents": "hi"}, "contents"),
        ({"contents": ["hi"]}, "contents[0]"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "contents[0].role"),
        ({"contents": [{"role": "user", "parts": []}]}, "contents[0].parts"),
        ({"contents": [{"role": "user", "parts": ["x"]}]}, "contents[0].parts[0]"),
        (
            {"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f"}}]}]},
            "contents[0].parts[0].functionCall",
        ),
        (
            {"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
            "contents[0].parts[0].functionResponse",
        ),
        (
            {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
            "contents[0].parts[0].functionCall.args",
        ),
        (
            {"contents": [{"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBE"}}]}]},
            "contents[0].parts[0].inlineData.mimeType",
        ),
        (
            {"contents": [_user("x")], "generationConfig": {"temperature": "hot"}},
            "generationConfig.temperature",
        ),
        (
            {"contents": [_user("x")], "generationConfig": {"maxOutputTokens": 0}},
            "generationConfig.maxOutputTokens",
        ),
        (
            {"contents": [_user("x")], "generationConfig": {"stopSequences": "x"}},
            "generationConfig.stopSequences",
        ),
        (
            {"contents": [_user("x")], "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "toolConfig.functionCallingConfig.mode",
        ),
        (
            {"contents": [_user("x")], "systemInstruction": {"parts": [{"inlineData": {}}]}},
            "systemInstruction.parts[0]",
        ),
        (
            {"contents": [_user("x")], "tools": [{"functionDeclarations": [{}]}]},
            "tools[0].functionDeclarations[0]",
        ),
    ],
)
def test_parse_rejects_bad_bodies_with_the_param(body: dict[str, Any], param: str) -> None:
    assert _invalid(body).param == param


def test_parse_rejects_a_function_response_that_answers_no_call() -> None:
    error = _invalid(
        {
            "contents": [
                _user("hi"),
                {"role": "model", "parts": [{"functionCall": {"name": "a"}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "b", "response": {}}}]},
            ]
        }
    )
    assert error.param == "contents[2].parts[0].functionResponse"


# ---- render ------------------------------------------------------------------------------------

USAGE = Usage(input_uncached=80, input_cache_read=20, output=50, reasoning=30)


def test_render_text_thinking_signatures_and_calls() -> None:
    response = ChatResponse(
        id="resp_1",
        model="upstream-name",
        parts=[
            ThinkingPart(text="pondering", signature="U0lHQQ=="),
            ThinkingPart(text="", signature="U0lHQg=="),
            TextPart("Calling."),
            ToolCallPart(id="toolu_1", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCallPart(id="toolu_2", name="get_time", arguments=""),
            ThinkingPart(redacted="opaque"),  # not carried
        ],
        finish_reason="tool_calls",
        usage=USAGE,
    )
    assert INBOUND.render(response, model=MODEL) == {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "pondering", "thought": True, "thoughtSignature": "U0lHQQ=="},
                        {"text": "Calling.", "thoughtSignature": "U0lHQg=="},
                        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "toolu_1"}},
                        {"functionCall": {"name": "get_time", "args": {}, "id": "toolu_2"}},
                    ],
                },
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 20,
            "totalTokenCount": 150,
            "cachedContentTokenCount": 20,
            "thoughtsTokenCount": 30,
        },
        "modelVersion": MODEL,
        "responseId": "resp_1",
    }


def test_render_then_parse_round_trips_the_assistant_turn() -> None:
    parts: list[Part] = [
        ThinkingPart(text="a thought", signature="U0lHQQ=="),
        ThinkingPart(text="", signature="U0lHQg=="),
        TextPart("answer"),
        ToolCallPart(id="toolu_1", name="f", arguments='{"x":1}'),
        ImagePart(media_type="image/png", data=PNG),
    ]
    response = ChatResponse(id="r", model="m", parts=parts, finish_reason="tool_calls", usage=Usage())
    content = INBOUND.render(response, model=MODEL)["candidates"][0]["content"]
    request = _parse({"contents": [_user("q"), content]})
    assert request.messages[1].parts == parts


def test_render_trailing_signature_and_empty_answer() -> None:
    response = ChatResponse(
        id="r",
        model="m",
        parts=[ThinkingPart(text="", signature="U0lH")],
        finish_reason="content_filter",
        usage=Usage(),
    )
    candidate = INBOUND.render(response, model=MODEL)["candidates"][0]
    assert candidate["content"]["parts"] == [{"text": "", "thought": True, "thoughtSignature": "U0lH"}]
    assert candidate["finishReason"] == "SAFETY"


@pytest.mark.parametrize(
    ("canonical", "gemini"),
    [
        ("stop", "STOP"),
        ("stop_sequence", "STOP"),
        ("tool_calls", "STOP"),
        ("length", "MAX_TOKENS"),
        ("content_filter", "SAFETY"),
        ("error", "OTHER"),
    ],
)
def test_finish_reasons_rendered(canonical: Any, gemini: str) -> None:
    response = ChatResponse(id="r", model="m", parts=[], finish_reason=canonical, usage=Usage())
    assert INBOUND.render(response, model=MODEL)["candidates"][0]["finishReason"] == gemini
    assert FINISH_TO_GEMINI[canonical] == gemini


@pytest.mark.parametrize(
    ("gemini", "has_calls", "canonical"),
    [
        ("STOP", False, "stop"),
        ("STOP", True, "tool_calls"),
        (None, True, "tool_calls"),
        ("MAX_TOKENS", True, "length"),
        ("SAFETY", False, "content_filter"),
        ("RECITATION", False, "content_filter"),
        ("PROHIBITED_CONTENT", False, "content_filter"),
        ("MALFORMED_FUNCTION_CALL", False, "error"),
        ("OTHER", False, "error"),
        ("SOMETHING_NEW", False, "stop"),
    ],
)
def test_finish_reasons_read(gemini: str | None, has_calls: bool, canonical: str) -> None:
    assert finish_from_gemini(gemini, has_calls) == canonical


def test_every_gemini_finish_reason_maps_to_a_canonical_one() -> None:
    assert set(FINISH_FROM_GEMINI.values()) <= {"stop", "length", "content_filter", "error"}


# ---- usage -------------------------------------------------------------------------------------


def test_usage_cached_inside_prompt_and_thoughts_inside_output() -> None:
    meta = {
        "promptTokenCount": 1000,
        "cachedContentTokenCount": 600,
        "candidatesTokenCount": 50,
        "thoughtsTokenCount": 200,
        "totalTokenCount": 1250,
    }
    usage = usage_from_gemini(meta)
    assert usage == Usage(input_uncached=400, input_cache_read=600, output=250, reasoning=200)
    assert usage_to_gemini(usage) == meta


def test_usage_snake_case_tool_use_and_nonsense() -> None:
    assert usage_from_gemini(
        {"prompt_token_count": 10, "candidates_token_count": 5, "tool_use_prompt_token_count": 7}
    ) == Usage(input_uncached=17, output=5)
    # more cached than prompt: never a negative uncached count
    assert usage_from_gemini({"promptTokenCount": 10, "cachedContentTokenCount": 50}) == Usage(
        input_uncached=0, input_cache_read=10
    )
    assert usage_from_gemini({"promptTokenCount": "10", "candidatesTokenCount": -3}) == Usage()


def test_usage_to_gemini_counts_cache_writes_in_the_prompt() -> None:
    usage = Usage(input_uncached=10, input_cache_write=5, output=3)
    assert usage_to_gemini(usage) == {
        "promptTokenCount": 15,
        "candidatesTokenCount": 3,
        "totalTokenCount": 18,
    }


# ---- stream renderer ---------------------------------------------------------------------------


def _render(events: list[StreamEvent]) -> list[dict[str, Any]]:
    renderer = INBOUND.stream_renderer(model=MODEL, response_id="resp_9", created=0, include_usage=False)
    data = b"".join(renderer.event(e) for e in events) + renderer.close()
    return _chunks(data)


def _parts(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = chunk["candidates"][0]["content"]["parts"]
    return parts


def test_stream_renderer_text_then_a_last_chunk_with_finish_and_usage() -> None:
    chunks = _render(
        [
            StreamStart(id="x", model="y"),
            TextDelta("Hel"),
            TextDelta("lo"),
            StreamFinish("stop"),
            StreamUsage(Usage(input_uncached=5, output=2)),
        ]
    )
    assert [_parts(c) for c in chunks] == [[{"text": "Hel"}], [{"text": "lo"}], [{"text": ""}]]
    assert chunks[0] == {
        "candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}, "index": 0}],
        "modelVersion": MODEL,
        "responseId": "resp_9",
    }
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"] == {
        "promptTokenCount": 5,
        "candidatesTokenCount": 2,
        "totalTokenCount": 7,
    }
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])


def test_stream_renderer_sends_each_function_call_whole() -> None:
    chunks = _render(
        [
            TextDelta("Checking."),
            ToolCallStart(0, "call_a", "get_weather"),
            ToolCallDelta(0, '{"ci'),
            ToolCallDelta(0, 'ty":"Paris"}'),
            ToolCallStart(1, "call_b", "get_time"),
            ToolCallDelta(1, "{}"),
            StreamFinish("tool_calls"),
            StreamUsage(Usage(input_uncached=1, output=1)),
        ]
    )
    assert [_parts(c) for c in chunks] == [
        [{"text": "Checking."}],
        [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_a"}}],
        [{"functionCall": {"name": "get_time", "args": {}, "id": "call_b"}}],
    ]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_stream_renderer_holds_interleaved_calls_until_complete() -> None:
    chunks = _render(
        [
            ToolCallStart(0, "a", "f"),
            ToolCallDelta(0, '{"x":'),
            ToolCallStart(1, "b", "g"),  # call 0 is not complete yet: kept
            ToolCallDelta(1, '{"y":2}'),
            ToolCallDelta(0, "1}"),
            StreamFinish("tool_calls"),
        ]
    )
    assert [_parts(c) for c in chunks] == [
        [
            {"functionCall": {"name": "f", "args": {"x": 1}, "id": "a"}},
            {"functionCall": {"name": "g", "args": {"y": 2}, "id": "b"}},
        ]
    ]
    assert "usageMetadata" not in chunks[0]


def test_stream_renderer_thinking_and_signatures() -> None:
    chunks = _render(
        [
            ThinkingDelta(text="Let me "),
            ThinkingDelta(text="see."),
            ThinkingDelta(signature="U0lHMQ=="),  # ends the thought block (Anthropic style)
            ThinkingDelta(signature="U0lHMg=="),  # ahead of the part it belongs to (Gemini style)
            TextDelta("Answer"),
            ThinkingDelta(redacted="opaque"),  # not carried
            StreamFinish("stop"),
        ]
    )
    assert [_parts(c) for c in chunks] == [
        [{"text": "Let me ", "thought": True}],
        [{"text": "see.", "thought": True}],
        [{"text": "", "thought": True, "thoughtSignature": "U0lHMQ=="}],
        [{"text": "Answer", "thoughtSignature": "U0lHMg=="}],
        [{"text": ""}],
    ]
    # the client's history of those parts parses back to one signed thinking block
    history = [p for c in chunks for p in _parts(c)]
    request = _parse({"contents": [_user("q"), {"role": "model", "parts": history}]})
    assert request.messages[1].parts == [
        ThinkingPart(text="Let me see.", signature="U0lHMQ=="),
        ThinkingPart(text="", signature="U0lHMg=="),
        TextPart("Answer"),
    ]


def test_stream_renderer_signature_goes_on_the_next_call() -> None:
    chunks = _render(
        [
            ThinkingDelta(signature="U0lH"),
            ToolCallStart(0, "c", "f"),
            ToolCallDelta(0, "{}"),
            StreamFinish("tool_calls"),
        ]
    )
    assert _parts(chunks[-1]) == [
        {"functionCall": {"name": "f", "args": {}, "id": "c"}, "thoughtSignature": "U0lH"}
    ]


def test_stream_renderer_error_and_close_after_nothing() -> None:
    renderer = INBOUND.stream_renderer(model=MODEL, response_id="r", created=0, include_usage=True)
    assert renderer.close() == b""
    assert renderer.error("upstream went away", "upstream_error") == (
        b'data: {"error":{"code":502,"message":"upstream went away","status":"UNAVAILABLE"}}\n\n'
    )
    assert renderer.event(StreamError("slow down", "rate_limit_error")) == (
        b'data: {"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}\n\n'
    )
    assert _chunks(renderer.error("x", "RESOURCE_EXHAUSTED"))[0]["error"]["code"] == 429
    assert _chunks(renderer.error("x", "who-knows"))[0]["error"] == {
        "code": 500,
        "message": "x",
        "status": "INTERNAL",
    }


def test_error_body() -> None:
    assert error_body(404, "no such model") == {
        "error": {"code": 404, "message": "no such model", "status": "NOT_FOUND"}
    }
    assert error_body(418, "teapot")["error"]["status"] == "INVALID_ARGUMENT"
    assert error_body(599, "odd")["error"]["status"] == "INTERNAL"


# ---- to_body -----------------------------------------------------------------------------------


def test_to_body_full_request() -> None:
    request = ChatRequest(
        model="public-name",
        system=[TextPart("Be brief.")],
        messages=[
            Message(
                "user",
                [
                    TextPart("Look"),
                    ImagePart(media_type="image/png", data=PNG),
                    ImagePart(url="data:image/jpeg;base64,/9j/"),
                    ImagePart(url="https://example.com/cat.webp?size=2"),
                ],
            ),
            Message(
                "assistant",
                [
                    ThinkingPart(text="hmm", signature="U0lHQQ=="),
                    TextPart("Checking"),
                    ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
                ],
            ),
            Message(
                "user",
                [
                    ToolResultPart(tool_call_id="call_1", content=[TextPart('{"temp":21}')]),
                ],
            ),
        ],
        tools=[ToolDef("get_weather", "Weather now", WEATHER_SCHEMA), ToolDef("noop", None, {})],
        tool_choice=ToolChoice("tool", "get_weather"),
        parallel_tool_calls=False,  # not carried
        max_tokens=300,
        temperature=0.2,
        top_p=0.8,
        top_k=20,
        stop=["STOP"],
        seed=3,
        n=2,
        response_format={"type": "json_schema", "name": "x", "schema": {"type": "object"}},
        reasoning_effort="medium",
        user="u-1",  # not carried
    )
    assert UPSTREAM.to_body(request, upstream_model="gemini-2.5-pro") == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Look"},
                    {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
                    {
                        "fileData": {
                            "mimeType": "image/webp",
                            "fileUri": "https://example.com/cat.webp?size=2",
                        }
                    },
                ],
            },
            {
                "role": "model",
                "parts": [
                    {"text": "hmm", "thought": True, "thoughtSignature": "U0lHQQ=="},
                    {"text": "Checking"},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}, "id": "call_1"}}
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather now",
                        "parametersJsonSchema": WEATHER_SCHEMA,
                    },
                    {"name": "noop", "parametersJsonSchema": {"type": "object", "properties": {}}},
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {
            "temperature": 0.2,
            "topP": 0.8,
            "topK": 20,
            "maxOutputTokens": 300,
            "stopSequences": ["STOP"],
            "seed": 3,
            "candidateCount": 2,
            "responseMimeType": "application/json",
            "responseJsonSchema": {"type": "object"},
            "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True},
        },
    }


def test_to_body_minimal_has_no_model_and_no_config() -> None:
    body = UPSTREAM.to_body(
        ChatRequest(model="m", messages=[Message("user", [TextPart("hi")])]), upstream_model="g"
    )
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_to_body_tool_results_text_errors_and_images() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("go")]),
            Message(
                "assistant",
                [ToolCallPart("a", "f", "{}"), ToolCallPart("b", "g", "{}")],
            ),
            Message(
                "user",
                [
                    ToolResultPart("a", [TextPart("plain words")]),
                    ToolResultPart(
                        "b", [TextPart("broke"), ImagePart(media_type="image/png", data=PNG)], is_error=True
                    ),
                ],
            ),
        ],
    )
    contents = UPSTREAM.to_body(request, upstream_model="g")["contents"]
    # history from another model: Google's placeholder signature on the turn's first call
    assert contents[1]["parts"][0]["thoughtSignature"] == PLACEHOLDER_SIGNATURE
    assert "thoughtSignature" not in contents[1]["parts"][1]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "f", "response": {"output": "plain words"}, "id": "a"}},
        {"functionResponse": {"name": "g", "response": {"error": "broke"}, "id": "b"}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]


def test_to_body_keeps_a_real_signature_instead_of_the_placeholder() -> None:
    request = ChatRequest(
        model="m",
        messages=[
            Message("user", [TextPart("go")]),
            Message("assistant", [ThinkingPart(text="", signature="UkVBTA=="), ToolCallPart("a", "f", "{}")]),
        ],
    )
    parts = UPSTREAM.to_body(request, upstream_model="g")["contents"][1]["parts"]
    assert parts == [{"functionCall": {"name": "f", "args": {}, "id": "a"}, "thoughtSignature": "UkVBTA=="}]


@pytest.mark.parametrize(
    "message",
    [
        Message("user", [ToolResultPart("nobody", [TextPart("x")])]),
        Message("assistant", [ToolCallPart("a", "f", "not json")]),
    ],
)
def test_to_body_rejects_history_gemini_cannot_take(message: Message) -> None:
    with pytest.raises(InvalidRequest):
        UPSTREAM.to_body(ChatRequest(model="m", messages=[message]), upstream_model="g")


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        (ToolChoice("auto"), {"mode": "AUTO"}),
        (ToolChoice("none"), {"mode": "NONE"}),
        (ToolChoice("required"), {"mode": "ANY"}),
        (ToolChoice("tool", "f"), {"mode": "ANY", "allowedFunctionNames": ["f"]}),
    ],
)
def test_to_body_tool_choice(choice: ToolChoice, config: dict[str, Any]) -> None:
    request = ChatRequest(
        model="m",
        messages=[Message("user", [TextPart("x")])],
        tools=[ToolDef("f", None, {})],
        tool_choice=choice,
    )
    assert UPSTREAM.to_body(request, upstream_model="g")["toolConfig"] == {"functionCallingConfig": config}


@pytest.mark.parametrize(
    ("fields", "thinking"),
    [
        ({"reasoning_enabled": False}, {"thinkingBudget": 0}),
        ({"reasoning_enabled": True}, {"thinkingBudget": -1, "includeThoughts": True}),
        ({"reasoning_budget": 4000}, {"thinkingBudget": 4000, "includeThoughts": True}),
        ({"reasoning_effort": "low"}, {"thinkingBudget": 1024, "includeThoughts": True}),
        ({"reasoning_effort": "high"}, {"thinkingBudget": 24576, "includeThoughts": True}),
        ({}, None),
    ],
)
def test_to_body_thinking(fields: dict[str, Any], thinking: dict[str, Any] | None) -> None:
    request = ChatRequest(model="m", messages=[Message("user", [TextPart("x")])], **fields)
    config = UPSTREAM.to_body(request, upstream_model="g").get("generationConfig", {})
    assert config.get("thinkingConfig") == thinking


def test_to_body_json_object_and_openai_shaped_schema() -> None:
    def config(response_format: dict[str, Any]) -> Any:
        request = ChatRequest(
            model="m", messages=[Message("user", [TextPart("x")])], response_format=response_format
        )
        return UPSTREAM.to_body(request, upstream_model="g")["generationConfig"]

    assert config({"type": "json_object"}) == {"responseMimeType": "application/json"}
    assert config({"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "string"}}}) == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "string"},
    }


# ---- from_body ---------------------------------------------------------------------------------

ANSWER: dict[str, Any] = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "Considering the weather", "thought": True},
                    {"text": "I'll check both.", "thoughtSignature": "U0lHMQ=="},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 40,
        "candidatesTokenCount": 12,
        "thoughtsTokenCount": 8,
        "totalTokenCount": 60,
    },
    "modelVersion": "gemini-2.5-flash-001",
    "responseId": "abc123",
}


def test_from_body_text_thoughts_and_calls_with_synthesized_ids() -> None:
    response = UPSTREAM.from_body(ANSWER)
    assert response == ChatResponse(
        id="abc123",
        model="gemini-2.5-flash-001",
        parts=[
            ThinkingPart(text="Considering the weather"),
            ThinkingPart(text="", signature="U0lHMQ=="),
            TextPart("I'll check both."),
            ToolCallPart(id="call_0", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCallPart(id="call_1", name="get_weather", arguments='{"city":"Rome"}'),
        ],
        finish_reason="tool_calls",
        usage=Usage(input_uncached=40, output=20, reasoning=8),
    )
    assert UPSTREAM.usage_from_body(ANSWER) == response.usage


def test_from_body_to_body_returns_signatures_on_their_parts() -> None:
    response = UPSTREAM.from_body(ANSWER)
    history = ChatRequest(
        model="m", messages=[Message("user", [TextPart("q")]), Message("assistant", response.parts)]
    )
    parts = UPSTREAM.to_body(history, upstream_model="g")["contents"][1]["parts"]
    original = ANSWER["candidates"][0]["content"]["parts"]
    assert parts[:2] == original[:2]
    assert [p["functionCall"] for p in parts[2:]] == [
        {**original[2]["functionCall"], "id": "call_0"},
        {**original[3]["functionCall"], "id": "call_1"},
    ]


def test_from_body_keeps_upstream_call_ids_and_images() -> None:
    data = {
        "candidates": [
            {
                "content": {
                    "parts": [
                        {"functionCall": {"id": "fc_1", "name": "f"}},
                        {"inlineData": {"mimeType": "image/png", "data": PNG}},
                    ]
                },
                "finishReason": "MAX_TOKENS",
            }
        ]
    }
    response = UPSTREAM.from_body(data)
    assert response.parts == [ToolCallPart("fc_1", "f", "{}"), ImagePart(media_type="image/png", data=PNG)]
    assert response.finish_reason == "length"
    assert response.usage == Usage()
    assert UPSTREAM.usage_from_body(data) is None


def test_from_body_blocked_prompt() -> None:
    response = UPSTREAM.from_body(
        {
            "promptFeedback": {"blockReason": "SAFETY"},
            "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9},
        }
    )
    assert (response.parts, response.finish_reason) == ([], "content_filter")
    assert response.usage == Usage(input_uncached=9)


# ---- stream parser -----------------------------------------------------------------------------


def _sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(chunk) + b"\r"


def _chunk(parts: list[dict[str, Any]], **candidate: Any) -> dict[str, Any]:
    return {
        "candidates": [{"content": {"parts": parts, "role": "model"}, "index": 0, **candidate}],
        "usageMetadata": {"promptTokenCount": 10, "totalTokenCount": 10},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "rid",
    }


def test_stream_parser_text_thoughts_calls_and_usage() -> None:
    parser = UPSTREAM.stream_parser()
    last = _chunk(
        [
            {"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "U0lH"},
            {"functionCall": {"name": "g"}},
        ],
        finishReason="STOP",
    )
    last["usageMetadata"] = {
        "promptTokenCount": 10,
        "cachedContentTokenCount": 4,
        "candidatesTokenCount": 6,
        "thoughtsTokenCount": 3,
        "totalTokenCount": 19,
    }
    events: list[StreamEvent] = []
    for chunk in (
        _chunk([{"text": "Hmm", "thought": True}]),
        _chunk([{"text": "Hi", "thoughtSignature": "U0lHMA=="}]),
        _chunk([{"text": " there"}]),
        last,
    ):
        assert not parser.done
        events += parser.feed(_sse(chunk))
    usage = Usage(input_uncached=6, input_cache_read=4, output=9, reasoning=3)
    assert events == [
        StreamStart(id="rid", model="gemini-2.5-flash"),
        ThinkingDelta(text="Hmm"),
        ThinkingDelta(signature="U0lHMA==", separate=True),
        TextDelta("Hi"),
        TextDelta(" there"),
        ThinkingDelta(signature="U0lH", separate=True),
        ToolCallStart(0, "call_0", "f"),
        ToolCallDelta(0, '{"a":1}'),
        ToolCallStart(1, "call_1", "g"),
        ToolCallDelta(1, "{}"),
        StreamFinish("tool_calls"),
        StreamUsage(usage),
    ]
    assert parser.done and parser.usage == usage


def test_stream_parser_plain_text_finish_and_ignored_events() -> None:
    parser = GeminiStreamParser()
    assert parser.feed(b": keep-alive") == []
    assert parser.feed(b"data: not json") == []
    assert parser.usage is None
    events = parser.feed(_sse(_chunk([{"text": "done"}], finishReason="MAX_TOKENS")))
    assert events[1:] == [TextDelta("done"), StreamFinish("length"), StreamUsage(Usage(input_uncached=10))]
    assert parser.done


def test_stream_parser_error_event_and_blocked_prompt() -> None:
    parser = GeminiStreamParser()
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    assert parser.feed(b"data: " + orjson.dumps(error)) == [
        StreamError("The model is overloaded.", "UNAVAILABLE")
    ]
    assert not parser.done
    blocked = GeminiStreamParser().feed(
        _sse(
            {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "responseId": "r", "modelVersion": "m"}
        )
    )
    assert blocked == [StreamStart("r", "m"), StreamFinish("content_filter")]


def test_stream_parser_into_stream_renderer() -> None:
    parser = GeminiStreamParser()
    renderer = INBOUND.stream_renderer(model=MODEL, response_id="rid", created=0, include_usage=False)
    out = b""
    for chunk in (
        _chunk([{"text": "Hi"}]),
        _chunk([{"functionCall": {"name": "f", "args": {"a": 1}}}], finishReason="STOP"),
    ):
        for event in parser.feed(_sse(chunk)):
            out += renderer.event(event)
    out += renderer.close()
    chunks = _chunks(out)
    assert [_parts(c) for c in chunks] == [
        [{"text": "Hi"}],
        [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_0"}}],
    ]
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert chunks[-1]["usageMetadata"]["promptTokenCount"] == 10


# ---- helpers -----------------------------------------------------------------------------------


def test_passthrough_body_is_the_raw_bytes() -> None:
    raw = b'{"contents":[{"parts":[{"text":"hi"}]}]}'
    assert passthrough_body(raw, orjson.loads(raw), "gemini-2.5-pro") is raw


def test_models_list() -> None:
    listed = models_list(
        [
            {
                "id": "gemini-2.5-flash",
                "description": "Fast",
                "content_length": 1048576,
                "max_completion_tokens": 65536,
            },
            {"id": "gpt-4o", "description": None, "content_length": None, "max_completion_tokens": None},
        ]
    )
    assert listed == {
        "models": [
            {
                "name": "models/gemini-2.5-flash",
                "version": "001",
                "displayName": "gemini-2.5-flash",
                "description": "Fast",
                "inputTokenLimit": 1048576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            },
            {
                "name": "models/gpt-4o",
                "version": "001",
                "displayName": "gpt-4o",
                "description": "",
                "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
            },
        ]
    }


def test_openapi_to_json_schema() -> None:
    assert openapi_to_json_schema(
        {
            "type": "OBJECT",
            "nullable": True,
            "properties": {"type": {"type": "STRING", "enum": ["a"]}, "n": {"anyOf": [{"type": "INTEGER"}]}},
            "property_ordering": ["type", "n"],
        }
    ) == {
        "type": ["object", "null"],
        "properties": {"type": {"type": "string", "enum": ["a"]}, "n": {"anyOf": [{"type": "integer"}]}},
    }
    assert openapi_to_json_schema({"anyOf": [{"type": "STRING"}], "nullable": True}) == {
        "anyOf": [{"type": "string"}, {"type": "null"}]
    }
    assert openapi_to_json_schema({"type": "TYPE_UNSPECIFIED"}) == {}
