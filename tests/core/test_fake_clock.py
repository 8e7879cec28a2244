"""FakeClock: a clock that moves only when told to."""

from __future__ import annotations

import pytest

from ratetree.testing import FakeClock


def test_reading_the_clock_returns_the_current_time() -> None:
    clock = FakeClock(12.5)
    assert clock() == 12.5
    clock.advance(0.5)
    assert clock() == 13.0


@pytest.mark.parametrize("step", [-1.0, -1e-12, float("nan"), float("inf")])
def test_advancing_by_a_negative_or_non_finite_step_is_a_value_error(step: float) -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="step must be a finite number >= 0"):
        clock.advance(step)
    assert clock() == 0.0


def test_advance_runs_due_timers_in_order_each_at_its_own_moment() -> None:
    clock = FakeClock()
    seen: list[tuple[str, float]] = []
    clock.call_at(3.0, lambda: seen.append(("late", clock())))
    clock.call_at(1.0, lambda: seen.append(("early", clock())))
    clock.call_at(9.0, lambda: seen.append(("beyond", clock())))
    clock.call_at(2.0, lambda: seen.append(("cancelled", clock()))).cancel()
    assert clock.pending == 3
    clock.advance(5.0)
    assert seen == [("early", 1.0), ("late", 3.0)]
    assert clock() == 5.0 and clock.pending == 1


def test_a_timer_filed_in_the_past_runs_on_the_next_advance() -> None:
    clock = FakeClock(10.0)
    seen: list[float] = []
    clock.call_at(4.0, lambda: seen.append(clock()))
    clock.advance(0)
    assert seen == [10.0]
