"""Exact money: every amount is an integer count of nano-USD (1e-9 USD).

Prices are quoted in USD per 1M tokens (or per call); a price of p USD / 1M tokens is p * 1e9 nanos per
1M tokens, so the cost of t tokens is t * price_nanos_per_million / 1_000_000, rounded up once per
usage part. No float ever touches an amount.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Context, Decimal, Inexact, InvalidOperation, Overflow

NANOS_PER_USD = 1_000_000_000
_QUANTUM = Decimal(1) / NANOS_PER_USD
# Scaling to nanos is exact or refused: never rounded by the default 28-digit context, and never an
# astronomically large exponent (int(Decimal("1e999990")) alone takes tens of seconds of CPU).
_SCALE = Context(prec=60, Emax=60, traps=[InvalidOperation, Inexact, Overflow])


def usd_to_nanos(value: str | int | Decimal | float) -> int:
    """Parse a USD amount (string, int or Decimal; floats go through their shortest repr)."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
        raise ValueError("amount must be a number")
    try:
        dec = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation as exc:
        raise ValueError(f"not a decimal amount: {value!r}") from exc
    if not dec.is_finite():
        raise ValueError(f"not a finite amount: {value!r}")
    try:
        scaled = _SCALE.multiply(dec, NANOS_PER_USD)
    except ArithmeticError as exc:
        raise ValueError(f"amount out of range: {value!r}") from exc
    if scaled != scaled.to_integral_value():
        raise ValueError(f"amount has more than 9 decimal places: {value!r}")
    return int(scaled)


def nanos_to_usd(nanos: int) -> Decimal:
    return (Decimal(nanos) / NANOS_PER_USD).quantize(_QUANTUM)


def usd_str(nanos: int) -> str:
    """Exact plain decimal string, trailing zeros trimmed: 10000000000 -> "10", 1 -> "0.000000001"."""
    text = f"{nanos_to_usd(nanos):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def format_usd(nanos: int, places: int = 6) -> str:
    """A display string, e.g. "12.340000"; rounded half-even at ``places`` for display only."""
    return f"{Decimal(nanos) / NANOS_PER_USD:.{places}f}"


def usd_number(nanos: int) -> float:
    """A JSON number for 302 fields that clients read as numbers (display only, never re-used)."""
    return float(nanos_to_usd(nanos))


def cost_of_tokens(tokens: int, price_nanos_per_million: int) -> int:
    """Nanos for ``tokens`` at a per-1M-token price, rounded up (ceil) to a whole nano."""
    if tokens <= 0 or price_nanos_per_million <= 0:
        return 0
    return -((-tokens * price_nanos_per_million) // 1_000_000)


def ceil_decimal_to_nanos(value: Decimal) -> int:
    return int((value * NANOS_PER_USD).to_integral_value(rounding=ROUND_CEILING))
