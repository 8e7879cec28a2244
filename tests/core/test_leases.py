"""Leases: release settles tokens, fail cools down, and nothing is freed twice."""

from __future__ import annotations

import random

import pytest

from ratetree import Deployment, Group, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock


def one(
    limits: Limits,
    *,
    clock: FakeClock,
    group_limits: Limits | None = None,
    allowed_fails: int = 3,
    cooldown_time: float = 5.0,
) -> Scheduler:
    spec = TreeSpec(
        groups=[Group("g", [Member(deployment="d")], limits=group_limits or Limits())],
        deployments=[Deployment("d", limits)],
    )
    return Scheduler(
        spec,
        clock=clock,
        rng=random.Random(0),
        allowed_fails=allowed_fails,
        cooldown_time=cooldown_time,
    )


def tpm_left(s: Scheduler, name: str = "d") -> float:
    return s.snapshot().deployments[name].buckets[-1].remaining


def test_release_frees_the_concurrency_slot() -> None:
    s = one(Limits(max_parallel_requests=1), clock=FakeClock())
    lease = s.acquire("g")
    assert s.try_acquire("g") is None
    lease.release()
    assert s.try_acquire("g") is not None


def test_only_in_flight_limits_blocking_gives_retry_after_none() -> None:
    s = one(Limits(max_parallel_requests=1, rpm=100), clock=FakeClock())
    s.acquire("g")
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after is None


def test_release_with_fewer_tokens_refunds_the_difference() -> None:
    clock = FakeClock()
    s = one(Limits(tpm=1000), clock=clock)
    lease = s.acquire("g", tokens=600)
    assert tpm_left(s) == pytest.approx(400)
    lease.release(tokens=100)
    assert tpm_left(s) == pytest.approx(900)


def test_release_with_more_tokens_charges_the_extra_into_debt() -> None:
    clock = FakeClock()
    s = one(Limits(tpm=1000), clock=clock)  # refills 1000/60 tokens per second
    s.acquire("g", tokens=600).release(tokens=1600)
    assert tpm_left(s) == pytest.approx(-600)
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")  # even a zero-token request waits for the debt to be repaid
    assert info.value.retry_after == pytest.approx(36.0)


def test_settling_charges_every_token_bucket_on_the_path() -> None:
    clock = FakeClock()
    s = one(Limits(tpm=1000), clock=clock, group_limits=Limits(tpm=5000))
    s.acquire("g", tokens=100).release(tokens=300)
    snap = s.snapshot()
    assert snap.deployments["d"].buckets[0].remaining == pytest.approx(700)
    assert snap.groups["g"].buckets[0].remaining == pytest.approx(4700)


def test_a_second_release_does_nothing() -> None:
    s = one(Limits(max_parallel_requests=2, tpm=1000), clock=FakeClock())
    keep = s.acquire("g", tokens=10)
    lease = s.acquire("g", tokens=10)
    lease.release(tokens=500)
    lease.release(tokens=0)
    lease.fail(retry_after=100)
    snap = s.snapshot().deployments["d"]
    assert snap.in_flight == 1
    assert snap.cooling_for == 0
    assert snap.buckets[0].remaining == pytest.approx(1000 - 10 - 500)
    keep.release()


def test_the_context_manager_releases_on_exit_even_on_error() -> None:
    s = one(Limits(max_parallel_requests=1), clock=FakeClock())
    with pytest.raises(RuntimeError), s.acquire("g"):
        raise RuntimeError("provider call failed")
    with s.acquire("g") as lease:
        assert lease.deployment_id == "d"
    assert lease.released


def test_fail_with_retry_after_cools_down_exactly_that_long() -> None:
    clock = FakeClock(50.0)
    s = one(Limits(), clock=clock)
    s.acquire("g").fail(retry_after=7.5)
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(7.5)
    clock.advance(7.5 - 1e-6)
    assert s.try_acquire("g") is None
    clock.advance(1e-6)
    assert s.try_acquire("g") is not None


def test_a_cooldown_extends_but_never_shortens() -> None:
    clock = FakeClock()
    s = one(Limits(), clock=clock)
    a, b = s.acquire("g"), s.acquire("g")
    a.fail(retry_after=10)
    b.fail(retry_after=3)
    assert s.snapshot().deployments["d"].cooling_for == pytest.approx(10)


def test_fail_without_retry_after_cools_down_after_allowed_fails_within_a_minute() -> None:
    clock = FakeClock()
    s = one(Limits(), clock=clock, allowed_fails=2, cooldown_time=5.0)
    s.acquire("g").fail()
    s.acquire("g").fail()
    assert s.try_acquire("g") is not None  # two failures are allowed
    s.acquire("g").fail()
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(5.0)


def test_failures_older_than_a_minute_are_forgotten() -> None:
    clock = FakeClock()
    s = one(Limits(), clock=clock, allowed_fails=1, cooldown_time=5.0)
    s.acquire("g").fail()
    clock.advance(60.0)
    s.acquire("g").fail()
    assert s.try_acquire("g") is not None


def test_fail_gives_the_token_reservation_back_unless_told_otherwise() -> None:
    s = one(Limits(tpm=1000), clock=FakeClock())
    s.acquire("g", tokens=400).fail(retry_after=0)
    assert tpm_left(s) == pytest.approx(1000)
    s.acquire("g", tokens=400).fail(tokens=50)
    assert tpm_left(s) == pytest.approx(950)


def test_lease_exposes_deployment_payload_and_path() -> None:
    spec = TreeSpec(
        groups=[Group("inner", [Member(deployment="d")]), Group("outer", [Member(group="inner")])],
        deployments=[Deployment("d", payload={"api_base": "http://x"})],
    )
    s = Scheduler(spec, clock=FakeClock())
    lease = s.acquire("outer")
    assert lease.deployment_id == "d"
    assert lease.deployment == {"api_base": "http://x"}
    assert lease.path == ("outer", "inner", "d")


@pytest.mark.parametrize("bad", [-1, float("nan"), "10", True])
def test_release_and_fail_reject_bad_numbers(bad: object) -> None:
    s = one(Limits(), clock=FakeClock())
    lease = s.acquire("g")
    with pytest.raises(ValueError, match="tokens"):
        lease.release(tokens=bad)
    with pytest.raises(ValueError, match="retry_after"):
        lease.fail(retry_after=bad)
    assert not lease.released


def test_a_token_count_too_large_for_a_float_is_a_value_error() -> None:
    s = one(Limits(tpm=1000), clock=FakeClock())
    lease = s.acquire("g", tokens=10)
    with pytest.raises(ValueError, match="tokens"):
        lease.release(tokens=10**400)
    with pytest.raises(ValueError, match="tokens"):
        s.acquire("g", tokens=10**400)
    lease.release(tokens=10)
    assert tpm_left(s) == pytest.approx(990)
