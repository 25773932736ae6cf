"""omnirelay.core.tokens: the documented estimator rule, counted by hand.

Rule: a run of ASCII letters costs ceil(len / 4) tokens, a run of ASCII digits ceil(len / 3), each CJK
character and every other non-space symbol one token, whitespace nothing. A message array costs 3
tokens of framing, 4 per message, plus its contents and tool calls; an image part costs 765.
"""

from __future__ import annotations

from typing import Any

import pytest

from omnirelay.core.tokens import count_messages, count_text, count_tools


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("", 0),
        ("   \n\t  ", 0),
        ("a", 1),
        ("abcd", 1),
        ("abcde", 2),
        ("abcdefgh", 2),
        ("abcdefghi", 3),
        ("ABCDefgh", 2),
        ("1", 1),
        ("123", 1),
        ("1234", 2),
        ("1234567", 3),
        ("Hello, world!", 6),  # Hello 2 + , 1 + world 2 + ! 1
        ("Hello world", 4),  # whitespace is free
        ("abc123def", 3),  # abc 1 + 123 1 + def 1
        ("3.14", 3),  # 3 + . + 14
        ("e=mc^2", 5),  # e = mc ^ 2
        ("don't", 3),  # don ' t
        ("GPT-4o mini", 5),  # GPT - 4 o mini
        ("I have 1000000 apples.", 8),  # I 1, have 1, 1000000 3, apples 2, . 1
        ("a  b\n\nc", 3),
    ],
)
def test_count_text_ascii(text: str, tokens: int) -> None:
    assert count_text(text) == tokens


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("你好世界", 4),
        ("こんにちは", 5),  # hiragana
        ("カタカナ", 4),  # katakana
        ("안녕하세요", 5),  # hangul
        ("价格是100元", 5),  # 价 格 是 + 100 (1) + 元
    ],
)
def test_count_text_cjk(text: str, tokens: int) -> None:
    assert count_text(text) == tokens


def test_count_text_cjk_mixed_exact() -> None:
    # 你 1 + 好 1 + , 1 + world 2 = 5
    assert count_text("你好, world") == 5


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("café", 2),  # caf 1 + é 1 (a non-ASCII letter is one symbol)
        ("naïve", 3),  # na 1 + ï 1 + ve 1
        ("😀😀", 2),
        ("ｈｅｌｌｏ", 5),  # full-width letters are not ASCII letters
        ("１２３", 3),  # full-width digits are not ASCII digits: one each
        ("...", 3),
        ("->", 2),
    ],
)
def test_count_text_other_symbols(text: str, tokens: int) -> None:
    assert count_text(text) == tokens


def test_count_text_long_runs() -> None:
    assert count_text("a" * 400) == 100
    assert count_text("a" * 401) == 101
    assert count_text("9" * 300) == 100
    assert count_text("9" * 301) == 101
    assert count_text("ab " * 10) == 10


# ---- messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("messages", [None, "hello", 5, {"role": "user", "content": "hi"}])
def test_count_messages_non_list_is_zero(messages: Any) -> None:
    assert count_messages(messages) == 0


def test_count_messages_framing_only() -> None:
    assert count_messages([]) == 3


def test_count_messages_one_message() -> None:
    # 3 framing + 4 per message + "Hello, world!" 6
    assert count_messages([{"role": "user", "content": "Hello, world!"}]) == 13


def test_count_messages_two_messages() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},  # Be 1 + brief 2 + . 1 = 4
        {"role": "user", "content": "Hi"},  # 1
    ]
    assert count_messages(messages) == 3 + (4 + 4) + (4 + 1)


def test_count_messages_text_and_image_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Describe this"},  # Describe 2 + this 1
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
            ],
        }
    ]
    assert count_messages(messages) == 3 + 4 + 3 + 765


@pytest.mark.parametrize("image_type", ["image_url", "input_image", "image"])
def test_count_messages_image_part_types(image_type: str) -> None:
    messages = [{"role": "user", "content": [{"type": image_type, "data": "xxxxxxxxxxxxxxxxxxxx"}]}]
    assert count_messages(messages) == 3 + 4 + 765


def test_count_messages_two_images() -> None:
    part = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    assert count_messages([{"role": "user", "content": [part, part]}]) == 3 + 4 + 2 * 765


def test_count_messages_ignores_other_parts() -> None:
    messages = [
        {
            "role": "user",
            "content": ["loose string", 7, {"type": "input_audio", "input_audio": {"data": "abc"}}],
        }
    ]
    assert count_messages(messages) == 3 + 4


def test_count_messages_ignores_non_dict_messages() -> None:
    assert count_messages(["x", 5, None, {"role": "user", "content": "Hi"}]) == 3 + 4 + 1


def test_count_messages_missing_or_odd_content() -> None:
    assert count_messages([{"role": "user"}]) == 3 + 4
    assert count_messages([{"role": "user", "content": 42}]) == 3 + 4
    assert count_messages([{"role": "user", "content": {"text": "Hello"}}]) == 3 + 4


def test_count_messages_tool_calls() -> None:
    messages = [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    # get 1 + _ 1 + weather 2 = 4
                    # { " city " : " Paris " } = 1+1+1+1+1+1+2+1+1 = 10
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},  # 18 1 + C 1
    ]
    assert count_messages(messages) == 3 + (4 + 4 + 10) + (4 + 2)


def test_count_messages_odd_tool_calls() -> None:
    messages = [
        {
            "role": "assistant",
            "content": "ok",  # 1
            "tool_calls": [
                "not a call",
                {"function": "not a dict"},
                {"function": {"name": "f"}},  # f 1, no arguments
                {"function": {"arguments": "xyz"}},  # xyz 1, no name
            ],
        }
    ]
    assert count_messages(messages) == 3 + 4 + 1 + 1 + 1


def test_count_messages_tool_calls_not_a_list() -> None:
    messages = [{"role": "assistant", "content": "ok", "tool_calls": {"function": {"name": "abcdefgh"}}}]
    assert count_messages(messages) == 3 + 4 + 1


# ---- tools --------------------------------------------------------------------------------------


@pytest.mark.parametrize("tools", [None, [], "tools", {"type": "function"}])
def test_count_tools_nothing(tools: Any) -> None:
    assert count_tools(tools) == 0


def test_count_tools_counts_the_compact_json() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    # [{"type":"function","function":{"name":"f"}}]
    # 20 symbols ([ { " " : " " , " " : { " " : " " } } ]) + type 1 + function 2 + function 2 + name 1 + f 1
    assert count_tools(tools) == 20 + 1 + 2 + 2 + 1 + 1
