"""omnirelay.core.breaker: error-rate breaker with cooldown and a single half-open probe."""

from __future__ import annotations

from omnirelay.core.breaker import Breaker, State
from omnirelay.settings import BreakerSettings


def _cfg(**overrides: float) -> BreakerSettings:
    values: dict[str, float] = {
        "window": 10,
        "min_requests": 4,
        "error_rate": 0.5,
        "cooldown_s": 10.0,
        "max_cooldown_s": 35.0,
    }
    values.update(overrides)
    return BreakerSettings.model_validate(values)


def _state(breaker: Breaker) -> State:
    """Read the state through a call, so the type checker does not narrow it between steps."""
    return breaker.state


def _tripped(now: float = 100.0, **overrides: float) -> Breaker:
    """A breaker opened at ``now`` by four straight failures."""
    breaker = Breaker(_cfg(**overrides))
    for _ in range(4):
        breaker.record(False, now=now)
    assert _state(breaker) is State.OPEN
    assert breaker.opened_at == now
    return breaker


def test_new_breaker_is_closed() -> None:
    breaker = Breaker(_cfg())
    assert _state(breaker) is State.CLOSED
    assert breaker.available(now=0.0)
    assert breaker.acquire(now=0.0)
    assert breaker.acquire(now=0.0)  # closed: no limit on concurrent calls


def test_stays_closed_below_min_requests() -> None:
    breaker = Breaker(_cfg())
    for _ in range(3):
        breaker.record(False, now=1.0)
    assert _state(breaker) is State.CLOSED
    assert breaker.available(now=1.0)


def test_opens_at_min_requests_when_all_fail() -> None:
    breaker = Breaker(_cfg())
    for _ in range(3):
        breaker.record(False, now=1.0)
    breaker.record(False, now=2.0)
    assert _state(breaker) is State.OPEN
    assert breaker.opened_at == 2.0
    assert not breaker.available(now=2.0)


def test_stays_closed_under_the_error_rate() -> None:
    breaker = Breaker(_cfg())
    for ok in (True, True, True, False):  # 1/4 failed
        breaker.record(ok, now=1.0)
    assert _state(breaker) is State.CLOSED
    breaker.record(False, now=1.0)  # 2/5 = 0.4 < 0.5
    assert _state(breaker) is State.CLOSED


def test_opens_exactly_at_the_error_rate() -> None:
    breaker = Breaker(_cfg())
    for ok in (True, True, True, False, False):  # 2/5
        breaker.record(ok, now=1.0)
    assert _state(breaker) is State.CLOSED
    breaker.record(False, now=3.0)  # 3/6 = 0.5
    assert _state(breaker) is State.OPEN
    assert breaker.opened_at == 3.0


def test_only_the_last_window_counts() -> None:
    breaker = Breaker(_cfg(window=4, min_requests=4))
    for _ in range(10):
        breaker.record(True, now=1.0)
    breaker.record(False, now=1.0)  # window: T T T F -> 1/4
    assert _state(breaker) is State.CLOSED
    breaker.record(False, now=1.0)  # window: T T F F -> 2/4
    assert _state(breaker) is State.OPEN


def test_old_failures_slide_out_of_the_window() -> None:
    breaker = Breaker(_cfg(window=4, min_requests=4, error_rate=0.75))
    for ok in (False, False, True, True):  # 2/4 < 0.75
        breaker.record(ok, now=1.0)
    for _ in range(4):
        breaker.record(True, now=1.0)
    breaker.record(False, now=1.0)  # T T T F: 1/4
    breaker.record(False, now=1.0)  # T T F F: 2/4
    assert _state(breaker) is State.CLOSED
    breaker.record(False, now=1.0)  # T F F F: 3/4
    assert _state(breaker) is State.OPEN


def test_error_rate_one_needs_all_failures() -> None:
    breaker = Breaker(_cfg(error_rate=1.0))
    for ok in (True, False, False, False, False, False):
        breaker.record(ok, now=1.0)
    assert _state(breaker) is State.CLOSED  # 5/6
    breaker2 = Breaker(_cfg(error_rate=1.0))
    for _ in range(4):
        breaker2.record(False, now=1.0)
    assert _state(breaker2) is State.OPEN


def test_refuses_during_cooldown() -> None:
    breaker = _tripped(now=100.0)
    assert not breaker.available(now=100.0)
    assert not breaker.available(now=109.999)
    assert not breaker.acquire(now=105.0)
    assert not breaker.acquire(now=109.999)
    assert _state(breaker) is State.OPEN


def test_available_after_cooldown_without_changing_state() -> None:
    breaker = _tripped(now=100.0)
    assert breaker.available(now=110.0)
    assert _state(breaker) is State.OPEN  # available() only looks


def test_half_open_lets_exactly_one_probe() -> None:
    breaker = _tripped(now=100.0)
    assert breaker.acquire(now=110.0)
    assert _state(breaker) is State.HALF_OPEN
    assert not breaker.acquire(now=110.0)
    assert not breaker.acquire(now=500.0)
    assert not breaker.available(now=500.0)


def test_probe_success_closes_with_a_fresh_window() -> None:
    breaker = _tripped(now=100.0)
    assert breaker.acquire(now=110.0)
    breaker.record(True, now=111.0, probe=True)
    assert _state(breaker) is State.CLOSED
    assert breaker.available(now=111.0)
    assert breaker.acquire(now=111.0)
    assert breaker.acquire(now=111.0)
    # fresh window: three failures are under min_requests again
    for _ in range(3):
        breaker.record(False, now=112.0)
    assert _state(breaker) is State.CLOSED


def test_probe_failure_reopens_with_doubled_cooldown_capped() -> None:
    breaker = _tripped(now=100.0)  # cooldown 10, max 35
    assert breaker.acquire(now=110.0)
    breaker.record(False, now=112.0, probe=True)
    assert _state(breaker) is State.OPEN
    assert breaker.opened_at == 112.0
    # cooldown now 20
    assert not breaker.available(now=131.999)
    assert not breaker.acquire(now=131.999)
    assert breaker.available(now=132.0)
    assert breaker.acquire(now=132.0)
    breaker.record(False, now=132.0, probe=True)
    # cooldown 40 capped to 35
    assert not breaker.available(now=166.999)
    assert breaker.available(now=167.0)
    assert breaker.acquire(now=167.0)
    breaker.record(False, now=167.0, probe=True)
    # stays at the cap
    assert not breaker.available(now=201.999)
    assert breaker.available(now=202.0)


def test_success_resets_the_cooldown() -> None:
    breaker = _tripped(now=100.0)
    assert breaker.acquire(now=110.0)
    breaker.record(False, now=110.0, probe=True)  # cooldown 20
    assert breaker.acquire(now=130.0)
    breaker.record(True, now=130.0, probe=True)
    assert _state(breaker) is State.CLOSED
    for _ in range(4):
        breaker.record(False, now=200.0)
    assert _state(breaker) is State.OPEN
    # back to the configured 10 s, not 20 or 40
    assert not breaker.available(now=209.999)
    assert breaker.available(now=210.0)


def test_reopened_from_closed_does_not_back_off() -> None:
    breaker = _tripped(now=0.0)
    t = 0.0
    for _ in range(3):
        assert breaker.acquire(now=t + 10.0)
        breaker.record(True, now=t + 10.0, probe=True)  # probe succeeds: closed, cooldown back to 10
        t += 100.0
        for _ in range(4):
            breaker.record(False, now=t)
        assert _state(breaker) is State.OPEN
        assert not breaker.available(now=t + 9.999)
        assert breaker.available(now=t + 10.0)


def test_release_frees_the_probe_slot() -> None:
    breaker = _tripped(now=100.0)
    assert breaker.acquire(now=110.0)
    assert not breaker.available(now=110.0)
    breaker.release()
    assert _state(breaker) is State.HALF_OPEN
    assert breaker.available(now=110.0)
    assert breaker.acquire(now=110.0)
    assert not breaker.acquire(now=110.0)


def test_release_when_closed_changes_nothing() -> None:
    breaker = Breaker(_cfg())
    breaker.release()
    assert _state(breaker) is State.CLOSED
    assert breaker.acquire(now=0.0)


def test_release_when_open_changes_nothing() -> None:
    breaker = _tripped(now=100.0)
    breaker.release()
    assert _state(breaker) is State.OPEN
    assert not breaker.acquire(now=105.0)


def test_outcomes_while_open_are_ignored() -> None:
    breaker = _tripped(now=100.0)
    for _ in range(20):
        breaker.record(True, now=101.0)
    assert _state(breaker) is State.OPEN
    assert breaker.opened_at == 100.0
    assert not breaker.available(now=109.0)
    breaker.record(False, now=105.0)
    assert breaker.opened_at == 100.0  # a late failure does not restart the cooldown
    assert breaker.available(now=110.0)


def test_window_is_cleared_when_opening() -> None:
    breaker = _tripped(now=100.0)
    assert breaker.acquire(now=110.0)
    breaker.record(True, now=110.0, probe=True)
    # if old failures had survived, one more failure would reopen it
    breaker.record(False, now=111.0)
    assert _state(breaker) is State.CLOSED


def test_in_half_open_only_the_probe_decides() -> None:
    """A call that began before the breaker opened finishes late: its outcome must not close it."""
    breaker = _tripped(now=100.0)
    assert breaker.acquire(now=110.0)
    assert breaker.probing
    breaker.record(True, now=110.5)  # the late call, not the probe
    assert _state(breaker) is State.HALF_OPEN
    assert breaker.probing
    breaker.record(False, now=111.0, probe=True)
    assert _state(breaker) is State.OPEN
    assert not breaker.probing
