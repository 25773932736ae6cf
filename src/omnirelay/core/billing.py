"""Reserve before the upstream call, settle after: the one path every route's money goes through.

Rules (docs/architecture.md, "Money"):
- ``reserve`` succeeds while the account's balance minus its outstanding holds is positive, and
  while each key limit minus the key's spend and holds is positive; then it holds the estimate. So
  concurrent requests can take an account below zero by at most one request's hold.
- ``settle`` releases the hold, charges the real cost (zero for a failed call) and queues the usage
  row and ledger charge for the batched writer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from omnirelay.core.accounts import KeyState, utc_day
from omnirelay.core.pricing import ModelInfo, Price
from omnirelay.core.usage import Usage
from omnirelay.errors import InsufficientBalance, KeyCostLimit, KeyDailyLimit
from omnirelay.store.repo import UsageRow
from omnirelay.store.writer import UsageWriter


@dataclass(slots=True)
class Hold:
    key: KeyState
    amount: int
    day: str
    open: bool = True


@dataclass(slots=True)
class CallRecord:
    """What a usage row needs besides the money."""

    request_id: str
    endpoint: str
    model: str
    stream: bool = False
    channel: str | None = None
    status: str = "ok"
    http_status: int = 200
    started: float = 0.0
    first_byte_ms: int | None = None
    attempts: int = 0
    error: str | None = None


class Billing:
    def __init__(self, writer: UsageWriter, *, default_output_hold_tokens: int) -> None:
        self._writer = writer
        self._default_output = default_output_hold_tokens

    def estimate_chat(self, model: ModelInfo, input_tokens: int, max_output: int | None) -> int:
        """Hold for a chat call: estimated input plus the most output the call may produce."""
        price = model.price
        if price is None:
            return 0
        output = max_output or model.max_completion_tokens or self._default_output
        return price.cost(Usage(input_uncached=input_tokens, output=output))

    def reserve(self, key: KeyState, amount: int) -> Hold:
        today = utc_day()
        key.roll_day(today)
        account = key.account
        if account.available <= 0:
            raise InsufficientBalance("Insufficient account balance")
        if key.limit_cost and key.current_cost + key.held >= key.limit_cost:
            raise KeyCostLimit("This API key has reached its total cost limit")
        if key.limit_daily_cost and key.current_date_cost + key.held >= key.limit_daily_cost:
            raise KeyDailyLimit("This API key has reached its daily cost limit")
        account.held += amount
        key.held += amount
        return Hold(key=key, amount=amount, day=today)

    def settle(self, hold: Hold, price: Price | None, usage: Usage | None, rec: CallRecord) -> int:
        """Release the hold and charge ``usage`` at ``price``; ``usage=None`` means nothing is owed.

        The usage row and ledger charge go to the batched writer. Durable tasks use ``usage_row`` and
        ``apply`` instead, writing the row in the same transaction as the task's final state.
        """
        row = self.usage_row(hold, price, usage, rec)
        self.apply(hold, row)
        self._writer.submit(row)
        return row.cost

    def apply(self, hold: Hold, row: UsageRow) -> None:
        """Release ``hold`` and charge ``row.cost`` to the in-memory account and key."""
        self.release(hold)
        key = hold.key
        account = key.account
        key.roll_day(row.cost_date)
        account.balance -= row.cost
        key.current_cost += row.cost
        key.current_date_cost += row.cost

    def release(self, hold: Hold) -> None:
        """Give ``hold`` back without a charge (the charge, if any, was written elsewhere)."""
        if not hold.open:
            raise RuntimeError("hold settled twice")
        hold.open = False
        hold.key.account.held -= hold.amount
        hold.key.held -= hold.amount

    def restore(self, key: KeyState, amount: int) -> Hold:
        """Re-take a hold recorded in the database (a durable task's, after a restart): no checks."""
        key.account.held += amount
        key.held += amount
        return Hold(key=key, amount=amount, day=utc_day())

    def usage_row(self, hold: Hold, price: Price | None, usage: Usage | None, rec: CallRecord) -> UsageRow:
        """The usage row (with its cost) that settling ``hold`` for ``usage`` writes; changes nothing."""
        key = hold.key
        account = key.account
        cost = price.cost(usage) if (price is not None and usage is not None) else 0
        day = utc_day()
        now = time.time()
        u = usage or Usage(requests=0)
        return UsageRow(
            request_id=rec.request_id,
            account_id=account.id,
            key_id=key.id,
            api_name=key.api_name,
            endpoint=rec.endpoint,
            model=rec.model,
            channel=rec.channel,
            status=rec.status,
            http_status=rec.http_status,
            stream=rec.stream,
            input_tokens=u.input_total,
            cached_input_tokens=u.input_cache_read,
            cache_write_tokens=u.input_cache_write,
            output_tokens=u.output,
            reasoning_tokens=u.reasoning,
            requests=u.requests,
            estimated=u.estimated,
            cost=cost,
            latency_ms=int((now - rec.started) * 1000) if rec.started else 0,
            first_byte_ms=rec.first_byte_ms,
            attempts=rec.attempts,
            error=rec.error,
            created_at=int(now),
            cost_date=day,
        )
