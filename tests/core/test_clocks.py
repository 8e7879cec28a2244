"""Clocks: VirtualClock's exact steps, and the clock rule (time never goes backwards inside a
scheduler; NaN and infinite readings count as the last good one)."""

from __future__ import annotations

import logging
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import Deployment, Group, Limits, Member, NoCapacity, Rate, Scheduler, TreeSpec
from ratetree.clocks import SteadyReading, TimerClock, VirtualClock
from ratetree.testing import FakeClock

ONE_PER_SECOND = TreeSpec(
    groups=[Group("g", members=[Member(deployment="d")])],
    deployments=[Deployment("d", limits=Limits(rpm=Rate(1, 1.0)))],
)


class Readings:
    """A clock that returns the readings it is given, then keeps returning the last."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


def test_fake_clock_is_the_virtual_clock_under_the_test_name() -> None:
    clock = FakeClock(2.0)
    assert isinstance(clock, VirtualClock) and isinstance(clock, TimerClock)
    assert not isinstance(lambda: 0.0, TimerClock)


def test_two_steps_that_sum_to_seven_land_on_ten_and_fire_its_timer() -> None:
    clock = FakeClock(3.0)
    fired: list[float] = []
    clock.call_at(10.0, lambda: fired.append(clock()))
    clock.advance(7 - 1e-6)
    assert fired == []
    clock.advance(1e-6)
    assert clock() == 10.0
    assert fired == [10.0]


@given(
    start=st.floats(-1e6, 1e6, allow_nan=False),
    steps=st.lists(st.floats(0, 1e3, allow_nan=False), max_size=30),
)
def test_a_sequence_of_advances_lands_where_their_exact_sum_does(
    start: float, steps: list[float]
) -> None:
    exact = Fraction(start) + sum(map(Fraction, steps), Fraction(0))
    clock = VirtualClock(start)
    fired: list[float] = []
    clock.call_at(float(exact), lambda: fired.append(clock()))
    for step in [*steps, 0.0]:  # a last advance(0) runs a timer already due
        clock.advance(step)
    assert clock() == float(exact)
    assert fired == [float(exact)]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_a_reading_that_is_not_finite_counts_as_the_last_good_one(bad: float) -> None:
    reading = SteadyReading(Readings(5.0, bad, 6.0))
    assert reading.read() == 5.0
    assert reading.read() == 5.0
    assert reading.lag == 0.0
    assert reading.read() == 6.0


def test_a_bad_first_reading_holds_time_at_zero() -> None:
    reading = SteadyReading(Readings(float("nan"), 1.0))
    assert reading.read() == 0.0
    assert reading.read() == 1.0


def test_a_step_back_holds_time_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    reading = SteadyReading(Readings(10.0, 7.5, 8.0, 12.0))
    with caplog.at_level(logging.WARNING, logger="ratetree"):
        assert reading.read() == 10.0
        assert (reading.read(), reading.lag) == (10.0, 2.5)
        assert (reading.read(), reading.lag) == (10.0, 2.0)
        assert (reading.read(), reading.lag) == (12.0, 0.0)
    backs = [r for r in caplog.records if "went back" in r.getMessage()]
    assert len(backs) == 1 and backs[0].name == "ratetree"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_clock_stuck_on_nan_or_inf_never_admits_past_the_limit(bad: float) -> None:
    s = Scheduler(ONE_PER_SECOND, clock=Readings(1.0, bad))
    admitted = 0
    for _ in range(50):
        lease = s.try_acquire("g")
        if lease is not None:
            admitted += 1
            lease.release()
    assert admitted == 1  # time stood still at 1.0: the bucket never refilled


def test_retry_after_is_exact_on_the_callers_clock_while_it_is_behind() -> None:
    # The second reading is one second behind the first.
    s = Scheduler(ONE_PER_SECOND, clock=Readings(100.0, 99.0))
    s.acquire("g")
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    # Capacity is back at 101.0 on the scheduler's time; the caller's clock reads 99.0.
    assert info.value.retry_after == 2.0


class JumpyClock:
    """Reads 1000 s ahead of ``true`` time, or 500 s behind that while ``back``."""

    def __init__(self) -> None:
        self.true = 0.0
        self.back = False

    def __call__(self) -> float:
        return 1000.0 + self.true - (500.0 if self.back else 0.0)


def test_a_clock_that_jumps_back_and_returns_does_not_admit_twice_within_a_second() -> None:
    # The provider allows one call per second: every call fails with retry_after=1.0.
    # The failures are reported while the clock is 500 s behind; read raw, the cooldown
    # would end 499 s before the clock returns.
    spec = TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")])], deployments=[Deployment("d")]
    )
    clock = JumpyClock()
    s = Scheduler(spec, clock=clock)
    admitted = []
    for step in range(5):  # true time 0.0 to 0.2
        clock.true, clock.back = step * 0.05, False
        lease = s.try_acquire("g")
        if lease is not None:
            admitted.append(clock.true)
            clock.back = True
            lease.fail(retry_after=1.0)
    assert admitted == [0.0]
