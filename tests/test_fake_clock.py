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
    with pytest.raises(ValueError, match="forward"):
        clock.advance(step)
    assert clock() == 0.0
