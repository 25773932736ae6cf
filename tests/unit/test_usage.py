"""omnirelay.core.usage: mapping OpenAI-style usage blocks onto the canonical, non-overlapping parts."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnirelay.core.usage import Usage, from_openai_usage


def test_usage_defaults() -> None:
    usage = Usage()
    assert (usage.input_uncached, usage.input_cache_read, usage.input_cache_write) == (0, 0, 0)
    assert (usage.output, usage.reasoning, usage.requests, usage.estimated) == (0, 0, 1, False)
    assert usage.input_total == 0


def test_input_total_sums_the_three_input_parts() -> None:
    assert Usage(input_uncached=5, input_cache_read=7, input_cache_write=11, output=100).input_total == 23


def test_plain_usage() -> None:
    usage = from_openai_usage({"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46})
    assert usage == Usage(input_uncached=12, input_cache_read=0, output=34, reasoning=0)


def test_cached_tokens_are_inside_prompt_tokens() -> None:
    usage = from_openai_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 20},
        }
    )
    assert usage == Usage(input_uncached=70, input_cache_read=30, output=50, reasoning=20)
    assert usage.input_total == 100


def test_cached_more_than_prompt_never_goes_negative() -> None:
    usage = from_openai_usage({"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 25}})
    assert usage.input_uncached == 0
    assert usage.input_cache_read == 10


def test_deepseek_prompt_cache_hit_tokens() -> None:
    usage = from_openai_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 10,
            "prompt_cache_hit_tokens": 64,
            "prompt_cache_miss_tokens": 36,
        }
    )
    assert usage == Usage(input_uncached=36, input_cache_read=64, output=10)


def test_deepseek_hit_used_when_details_report_zero() -> None:
    usage = from_openai_usage(
        {"prompt_tokens": 50, "prompt_tokens_details": {"cached_tokens": 0}, "prompt_cache_hit_tokens": 5}
    )
    assert (usage.input_uncached, usage.input_cache_read) == (45, 5)


def test_details_cached_tokens_win_over_deepseek_field() -> None:
    usage = from_openai_usage(
        {"prompt_tokens": 50, "prompt_tokens_details": {"cached_tokens": 7}, "prompt_cache_hit_tokens": 5}
    )
    assert (usage.input_uncached, usage.input_cache_read) == (43, 7)


def test_deepseek_hit_capped_at_prompt() -> None:
    usage = from_openai_usage({"prompt_tokens": 3, "prompt_cache_hit_tokens": 9})
    assert (usage.input_uncached, usage.input_cache_read) == (0, 3)


def test_reasoning_is_inside_completion_and_capped() -> None:
    usage = from_openai_usage(
        {"prompt_tokens": 1, "completion_tokens": 8, "completion_tokens_details": {"reasoning_tokens": 30}}
    )
    assert usage.output == 8
    assert usage.reasoning == 8


def test_empty_usage_is_all_zero() -> None:
    assert from_openai_usage({}) == Usage()


@pytest.mark.parametrize("garbage", ["100", -5, True, False, 1.5, 100.0, None, [3], {"n": 3}])
def test_garbage_counts_count_as_zero(garbage: Any) -> None:
    usage = from_openai_usage(
        {
            "prompt_tokens": garbage,
            "completion_tokens": garbage,
            "prompt_tokens_details": {"cached_tokens": garbage},
            "prompt_cache_hit_tokens": garbage,
            "completion_tokens_details": {"reasoning_tokens": garbage},
        }
    )
    assert usage == Usage()


@pytest.mark.parametrize("garbage", ["100", -5, True, 2.0, None])
def test_garbage_cache_counts_leave_prompt_uncached(garbage: Any) -> None:
    usage = from_openai_usage(
        {
            "prompt_tokens": 40,
            "completion_tokens": 2,
            "prompt_tokens_details": {"cached_tokens": garbage},
            "prompt_cache_hit_tokens": garbage,
            "completion_tokens_details": {"reasoning_tokens": garbage},
        }
    )
    assert usage == Usage(input_uncached=40, input_cache_read=0, output=2, reasoning=0)


@pytest.mark.parametrize("details", [[30], "30", 30, None])
def test_non_object_details_are_ignored(details: Any) -> None:
    usage = from_openai_usage(
        {
            "prompt_tokens": 40,
            "completion_tokens": 9,
            "prompt_tokens_details": details,
            "completion_tokens_details": details,
        }
    )
    assert usage == Usage(input_uncached=40, output=9)


_COUNT = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**9),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet="0123456789 -x", max_size=4),
    st.lists(st.integers(), max_size=2),
)


def _valid(value: Any) -> int:
    """The documented rule: only a positive int (not a bool) counts."""
    return value if type(value) is int and value > 0 else 0


@st.composite
def _usage_blocks(draw: st.DrawFn) -> dict[str, Any]:
    block: dict[str, Any] = {}
    for key in ("prompt_tokens", "completion_tokens", "prompt_cache_hit_tokens"):
        if draw(st.booleans()):
            block[key] = draw(_COUNT)
    if draw(st.booleans()):
        block["prompt_tokens_details"] = draw(
            st.one_of(st.fixed_dictionaries({"cached_tokens": _COUNT}), _COUNT)
        )
    if draw(st.booleans()):
        block["completion_tokens_details"] = draw(
            st.one_of(st.fixed_dictionaries({"reasoning_tokens": _COUNT}), _COUNT)
        )
    return block


@given(_usage_blocks())
@settings(database=None, max_examples=300)
def test_parts_are_non_negative_and_input_sums_to_prompt(block: dict[str, Any]) -> None:
    usage = from_openai_usage(block)
    for part in (usage.input_uncached, usage.input_cache_read, usage.input_cache_write, usage.output):
        assert part >= 0
    assert 0 <= usage.reasoning <= usage.output
    assert usage.input_cache_write == 0
    assert usage.input_uncached + usage.input_cache_read == _valid(block.get("prompt_tokens"))
    assert usage.input_total == _valid(block.get("prompt_tokens"))
    assert usage.output == _valid(block.get("completion_tokens"))
    assert usage.requests == 1
    assert usage.estimated is False


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
)
@settings(database=None)
def test_valid_counts_split_exactly(prompt: int, cached: int, completion: int) -> None:
    usage = from_openai_usage(
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
    )
    assert usage.input_cache_read == min(cached, prompt)
    assert usage.input_uncached == prompt - min(cached, prompt)
    assert usage.output == completion
