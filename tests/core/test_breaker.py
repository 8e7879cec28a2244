"""The circuit breaker's schedule (``ratetree.state.breaker``) on a FakeClock: when it
holds calls back, who probes, how the interval grows, and its bounds."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree.errors import ConfigError
from ratetree.state.breaker import CLOSED, PROBE, SKIP, Breaker
from ratetree.testing import FakeClock


class Fixed(random.Random):
    """A random source that always draws ``value``."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


def _breaker(clock: FakeClock, draw: float = 0.0, **settings: float) -> Breaker:
    return Breaker(clock, Fixed(draw), **settings)


def test_a_closed_breaker_lets_every_call_through_and_success_keeps_it_closed() -> None:
    b = _breaker(FakeClock(0.0))
    for _ in range(3):
        assert b.allow() == CLOSED
        assert b.record(True) is False
    assert not b.open and b.opened == 0


def test_a_failure_holds_calls_back_for_the_interval_then_lets_one_probe() -> None:
    clock = FakeClock(0.0)
    b = _breaker(clock, backoff=0.1, max_backoff=5.0, jitter=0.5)
    assert b.allow() == CLOSED
    b.record(False)
    assert b.open and b.opened == 1
    assert [b.allow() for _ in range(3)] == [SKIP] * 3
    clock.advance(0.099)
    assert b.allow() == SKIP
    clock.advance(0.001)
    assert b.allow() == PROBE
    # While the probe is on its way, everyone else is still answered from the fail mode.
    assert [b.allow() for _ in range(5)] == [SKIP] * 5
    assert b.skipped == 9
    assert b.record(True) is True  # the probe closed it
    assert b.allow() == CLOSED and not b.open


def test_failed_probes_double_the_interval_up_to_max_backoff() -> None:
    clock = FakeClock(0.0)
    b = _breaker(clock, backoff=0.5, max_backoff=3.0, jitter=0.5)
    b.allow()
    b.record(False)
    waits = []
    for _ in range(5):
        start = clock()
        while b.allow() == SKIP:
            clock.advance(0.125)
        waits.append(clock() - start)
        b.record(False)  # the probe failed too
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert b.opened == 1  # one outage, however many probes failed


def test_jitter_shortens_the_interval_by_the_drawn_fraction() -> None:
    clock = FakeClock(10.0)
    b = _breaker(clock, draw=0.5, backoff=1.0, max_backoff=8.0, jitter=0.4)
    b.record(False)
    assert b.until == pytest.approx(10.0 + 1.0 * (1 - 0.4 * 0.5))


def test_a_probe_that_never_reached_redis_lets_the_next_caller_probe() -> None:
    clock = FakeClock(0.0)
    b = _breaker(clock, backoff=1.0)
    b.record(False)
    clock.advance(1.0)
    assert b.allow() == PROBE
    assert b.record(None) is False  # e.g. the clock raised before the call was sent
    assert b.allow() == PROBE


def test_backoff_zero_turns_the_breaker_off() -> None:
    b = _breaker(FakeClock(0.0), backoff=0.0, max_backoff=0.0)
    b.record(False)
    assert not b.open and b.allow() == CLOSED


@given(
    backoff=st.floats(0.001, 10.0),
    extra=st.floats(0.0, 100.0),
    jitter=st.floats(0.0, 0.99),
    draw=st.floats(0.0, 0.999999),
    failures=st.integers(1, 200),
)
def test_every_interval_is_bounded_and_at_most_the_grown_backoff(
    backoff: float, extra: float, jitter: float, draw: float, failures: int
) -> None:
    b = _breaker(FakeClock(0.0), draw, backoff=backoff, max_backoff=backoff + extra, jitter=jitter)
    grown = min(backoff + extra, backoff * 2.0 ** (failures - 1))
    interval = b.interval(failures)
    assert grown * (1 - jitter) - 1e-12 <= interval <= grown <= backoff + extra


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"backoff": -1.0}, "backoff"),
        ({"backoff": float("nan")}, "backoff"),
        ({"max_backoff": float("inf")}, "max_backoff"),
        ({"backoff": 2.0, "max_backoff": 1.0}, "max_backoff"),
        ({"jitter": 1.0}, "jitter"),
        ({"jitter": True}, "jitter"),
    ],
)
def test_bad_settings_raise_config_error_naming_them(
    settings: dict[str, float], named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        _breaker(FakeClock(0.0), **settings)
