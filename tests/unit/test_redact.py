"""omnirelay.core.redact: upstream secrets never reach a client or a log line."""

from __future__ import annotations

from typing import Any

import pytest

from omnirelay.core.redact import REDACTED, Redactor


def test_marker() -> None:
    assert REDACTED == "[redacted]"


def test_configured_secret_removed() -> None:
    redactor = Redactor(["myupstreamsecret123"])
    assert redactor.text("the token myupstreamsecret123 was refused") == "the token [redacted] was refused"


def test_every_occurrence_removed() -> None:
    redactor = Redactor(["plainsecret"])
    assert redactor.text("plainsecret/plainsecret") == "[redacted]/[redacted]"


def test_several_secrets() -> None:
    redactor = Redactor(["alphasecret", "betasecret"])
    assert redactor.text("alphasecret+betasecret") == "[redacted]+[redacted]"


def test_longest_secret_first() -> None:
    redactor = Redactor(["abcd1234", "abcd1234efgh"])
    assert redactor.text("x abcd1234efgh y") == "x [redacted] y"


def test_short_and_empty_secrets_ignored() -> None:
    redactor = Redactor(["", "abc"])
    assert redactor.text("abc is fine") == "abc is fine"


def test_four_char_secret_is_used() -> None:
    assert Redactor(["wxyz"]).text("a wxyz b") == "a [redacted] b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Incorrect API key provided: sk-abc*****wxyz, check it",
            "Incorrect API key provided: [redacted], check it",
        ),
        ("key sk-proj-ABCdef123456 is invalid", "key [redacted] is invalid"),
        ("got pk_live_1234567890 here", "got [redacted] here"),
        ("rk-ABCDEFGH", "[redacted]"),
        ("use key-abcdef123456 now", "use [redacted] now"),
        ("api_0123456789abcdef", "[redacted]"),
        ("SK-UPPERCASE123", "[redacted]"),
        ("(sk-abc*****wxyz)", "([redacted])"),
    ],
)
def test_key_shapes_removed(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Rate limit reached for gpt-4o in organization org-123 on tokens per min.",
        "the skill set of a risk-free task_manager",
        "sk-short",  # fewer than 6 characters after the prefix
        "invalid_api_key",
        "This model's maximum context length is 128000 tokens.",
    ],
)
def test_ordinary_text_untouched(text: str) -> None:
    assert Redactor().text(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer [redacted]"),
        ("header was bearer tok/en+1=", "header was Bearer [redacted]"),
        ("BEARER   xyz", "Bearer [redacted]"),
        ("Bearer a.b.c and more", "Bearer [redacted] and more"),
    ],
)
def test_bearer_tokens_removed(text: str, expected: str) -> None:
    assert Redactor().text(text) == expected


def test_bearer_with_configured_secret() -> None:
    redactor = Redactor(["sk-configured-secret-1"])
    assert redactor.text("Bearer sk-configured-secret-1") == "Bearer [redacted]"


def test_secret_with_unusual_shape_needs_configuring() -> None:
    text = "token zz99plain99zz rejected"
    assert Redactor().text(text) == text
    assert Redactor(["zz99plain99zz"]).text(text) == "token [redacted] rejected"


def test_json_nested() -> None:
    redactor = Redactor(["plainsecretvalue"])
    body: dict[str, Any] = {
        "error": {
            "message": "Incorrect API key provided: sk-abc*****wxyz",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": None,
            "details": [
                {"hint": "Authorization: Bearer tok123"},
                "plainsecretvalue",
                42,
                1.5,
                None,
                True,
                ["nested plainsecretvalue"],
            ],
        },
        "count": 3,
    }
    assert redactor.json(body) == {
        "error": {
            "message": "Incorrect API key provided: [redacted]",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
            "param": None,
            "details": [
                {"hint": "Authorization: Bearer [redacted]"},
                "[redacted]",
                42,
                1.5,
                None,
                True,
                ["nested [redacted]"],
            ],
        },
        "count": 3,
    }
    # the input is not modified in place
    assert body["error"]["details"][1] == "plainsecretvalue"


@pytest.mark.parametrize("value", [None, 5, 2.5, True])
def test_json_scalars_pass_through(value: Any) -> None:
    assert Redactor(["plainsecret"]).json(value) == value


def test_json_top_level_string_and_list() -> None:
    redactor = Redactor(["plainsecret"])
    assert redactor.json("plainsecret") == "[redacted]"
    assert redactor.json(["a", "plainsecret"]) == ["a", "[redacted]"]
