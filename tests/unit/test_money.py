"""omnirelay.money: exact nano-USD amounts."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from omnirelay.money import (
    NANOS_PER_USD,
    ceil_decimal_to_nanos,
    cost_of_tokens,
    format_usd,
    nanos_to_usd,
    usd_number,
    usd_str,
    usd_to_nanos,
)


def test_nanos_per_usd() -> None:
    assert NANOS_PER_USD == 10**9


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        ("1", 1_000_000_000),
        ("0", 0),
        ("0.000000001", 1),
        ("0.15", 150_000_000),
        ("0.075", 75_000_000),
        ("12.345678901", 12_345_678_901),
        ("0.6944", 694_400_000),
        ("-1.5", -1_500_000_000),
        ("100000", 100_000_000_000_000),
        (3, 3_000_000_000),
        (0, 0),
        (-2, -2_000_000_000),
        (Decimal("2.5"), 2_500_000_000),
        (Decimal("0.000000007"), 7),
    ],
)
def test_usd_to_nanos_exact(value: str | int | Decimal, nanos: int) -> None:
    result = usd_to_nanos(value)
    assert result == nanos
    assert type(result) is int


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        # Floats go through their shortest repr, so the binary error of 0.1 never shows up.
        (0.1, 100_000_000),
        (0.15, 150_000_000),
        (0.3, 300_000_000),
        (1e-9, 1),
        (2.0, 2_000_000_000),
        (1234.5678, 1_234_567_800_000),
    ],
)
def test_usd_to_nanos_float_uses_shortest_repr(value: float, nanos: int) -> None:
    assert usd_to_nanos(value) == nanos


def test_usd_to_nanos_large_amount_is_exact() -> None:
    # 29 significant digits after scaling: more than the default decimal context keeps.
    assert usd_to_nanos("12345678901234567890.123456789") == 12_345_678_901_234_567_890_123_456_789


@pytest.mark.parametrize(
    "value",
    ["0.0000000001", "1.1234567891", "0.0000000015", Decimal("1E-10"), 1e-10, 0.1234567891],
)
def test_usd_to_nanos_refuses_more_than_nine_decimals(value: str | Decimal | float) -> None:
    with pytest.raises(ValueError, match="more than 9 decimal places"):
        usd_to_nanos(value)


@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "sNaN", "Infinity", "-inf", float("nan"), float("inf"), float("-inf"), Decimal("NaN")],
)
def test_usd_to_nanos_refuses_non_finite(value: str | float | Decimal) -> None:
    with pytest.raises(ValueError, match="not a finite amount"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", [True, False])
def test_usd_to_nanos_refuses_bool(value: bool) -> None:
    with pytest.raises(ValueError, match="must be a number"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", [[0, [1], 0], (0, (1,), 0), {"usd": 1}, None, b"1"])
def test_usd_to_nanos_refuses_other_types(value: Any) -> None:
    # Decimal() would read [0, [1], 0] (a JSON array in an API body) as the digit tuple for 1 USD.
    with pytest.raises(ValueError, match="must be a number"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", ["", "abc", "1,5", "$1", "1.2.3"])
def test_usd_to_nanos_refuses_garbage_strings(value: str) -> None:
    with pytest.raises(ValueError, match="not a decimal amount"):
        usd_to_nanos(value)


@pytest.mark.parametrize("value", ["1e999999", "-1e999999", "1e999990", "1e60", 10**100])
def test_usd_to_nanos_out_of_range_is_a_value_error(value: str | int) -> None:
    # Callers (admin and dashboard APIs, price parsing) catch ValueError; an arithmetic signal must not
    # leak, and an absurd exponent must be refused rather than expanded into a huge integer.
    with pytest.raises(ValueError, match="out of range"):
        usd_to_nanos(value)


def test_usd_to_nanos_keeps_trailing_zero_digits_exact() -> None:
    assert usd_to_nanos("1." + "0" * 70) == 1_000_000_000
    assert usd_to_nanos("1e51") == 10**60


@given(st.integers(min_value=-(10**18), max_value=10**18))
@settings(database=None)
def test_usd_str_round_trips(nanos: int) -> None:
    text = usd_str(nanos)
    assert "e" not in text.lower()
    assert usd_to_nanos(text) == nanos


@pytest.mark.parametrize(
    ("nanos", "text"),
    [
        (10_000_000_000, "10"),
        (1, "0.000000001"),
        (0, "0"),
        (1_500_000_000, "1.5"),
        (123_456_789, "0.123456789"),
        (100, "0.0000001"),
        (1_000_000_010, "1.00000001"),
        (-2_500_000_000, "-2.5"),
        (10**18, "1000000000"),
        (10**9 * 10**6, "1000000"),
    ],
)
def test_usd_str(nanos: int, text: str) -> None:
    assert usd_str(nanos) == text


def test_nanos_to_usd() -> None:
    assert nanos_to_usd(1) == Decimal("0.000000001")
    assert nanos_to_usd(12_340_000_000) == Decimal("12.34")
    assert str(nanos_to_usd(12_340_000_000)) == "12.340000000"


@pytest.mark.parametrize(
    ("nanos", "places", "text"),
    [
        (12_340_000_000, 6, "12.340000"),
        (0, 6, "0.000000"),
        (1_500, 6, "0.000002"),  # 0.0000015 -> half-even -> 0.000002
        (2_500, 6, "0.000002"),  # 0.0000025 -> half-even -> 0.000002
        (2_501, 6, "0.000003"),
        (1_005_000_000, 2, "1.00"),  # 1.005 -> half-even -> 1.00
        (1_015_000_000, 2, "1.02"),  # 1.015 -> half-even -> 1.02
        (7_000_000_000, 0, "7"),
    ],
)
def test_format_usd(nanos: int, places: int, text: str) -> None:
    assert format_usd(nanos, places) == text


def test_usd_number() -> None:
    assert usd_number(1_500_000_000) == 1.5
    assert usd_number(0) == 0.0
    assert usd_number(1) == 1e-9
    assert isinstance(usd_number(1), float)


@pytest.mark.parametrize(
    ("tokens", "price", "nanos"),
    [
        (1, 150_000_000, 150),  # 0.15 USD / 1M tokens
        (1_000_000, 150_000_000, 150_000_000),
        (7, 1_250_000_000, 8_750),
        (1, 1, 1),  # 1e-6 nano rounds up to a whole nano
        (3, 333_333, 1),  # 0.999999 -> 1
        (3, 37_500_000, 113),  # 112.5 -> 113
        (999_999, 1, 1),
        (1_000_001, 1, 2),
        (2_000_000, 1, 2),  # exact, no extra nano
        (0, 150_000_000, 0),
        (-5, 150_000_000, 0),
        (100, 0, 0),
        (100, -7, 0),
    ],
)
def test_cost_of_tokens_rounds_up(tokens: int, price: int, nanos: int) -> None:
    assert cost_of_tokens(tokens, price) == nanos


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=1, max_value=10**12))
@settings(database=None)
def test_cost_of_tokens_is_the_ceiling(tokens: int, price: int) -> None:
    exact = Fraction(tokens * price, 1_000_000)
    cost = cost_of_tokens(tokens, price)
    assert cost >= exact
    assert cost - 1 < exact


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        (Decimal("2"), 2_000_000_000),
        (Decimal("0.0000000001"), 1),
        (Decimal("1.0000000001"), 1_000_000_001),
        (Decimal("0.000000002"), 2),
        (Decimal("-0.0000000019"), -1),
    ],
)
def test_ceil_decimal_to_nanos(value: Decimal, nanos: int) -> None:
    assert ceil_decimal_to_nanos(value) == nanos
