"""Token buckets kept in time units: refill, debt, refunds and exact boundaries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import Rate
from ratetree.core.buckets import NEVER, Bucket, tolerance


def test_a_new_bucket_is_full() -> None:
    b = Bucket(Rate(30, 60))
    assert b.level(0.0) == 30
    assert b.ready_at(30) <= 0.0


def test_taking_and_refilling_follow_the_rate() -> None:
    b = Bucket(Rate(30, 60))  # one unit every 2 s
    for _ in range(30):
        b.take(1, 100.0)
    assert b.level(100.0) == pytest.approx(0.0)
    assert b.ready_at(1) == pytest.approx(102.0)
    assert b.level(101.0) == pytest.approx(0.5)
    assert b.level(1000.0) == 30  # never above capacity


def test_more_than_the_capacity_never_fits() -> None:
    b = Bucket(Rate(10, 60))
    assert b.ready_at(10) < 0
    assert b.ready_at(10.5) == NEVER


def test_debt_blocks_until_repaid() -> None:
    b = Bucket(Rate(60, 60))  # one unit per second
    b.take(60, 0.0)
    b.take(30, 0.0)  # charged extra after the fact
    assert b.level(0.0) == pytest.approx(-30)
    assert b.ready_at(0) == pytest.approx(30.0)


def test_giving_back_never_fills_past_capacity() -> None:
    b = Bucket(Rate(60, 60))
    b.take(10, 0.0)
    b.give_back(100, 5.0)
    assert b.level(5.0) == 60


@given(
    amount=st.integers(1, 10**7),
    period=st.sampled_from([1.0, 60.0, 3600.0, 86400.0]),
    start=st.floats(0, 1e7),
    used=st.integers(1, 10**7),
)
def test_the_ready_moment_is_exact_under_float_rounding(
    amount: int, period: float, start: float, used: int
) -> None:
    used = min(used, amount)
    b = Bucket(Rate(amount, period))
    b.take(used, start)
    ready = b.ready_at(used)
    # Arriving exactly at the computed moment, as a caller adding retry_after would, fits.
    arrival = start + (ready - start)
    assert ready <= arrival + tolerance(arrival)
    # A microsecond earlier does not.
    early = ready - 1e-6
    assert ready > early + tolerance(early)
