"""scheduler.reconfigure: state kept by id, limits applied from now on, removed deployments
drained, invalid configs refused whole, leases and waiters carried across."""

from __future__ import annotations

import asyncio

import pytest

from ratetree import (
    ConfigError,
    Deployment,
    Group,
    Lease,
    Limits,
    Member,
    Scheduler,
    TreeSpec,
    UnknownGroup,
)
from ratetree.testing import FakeClock
from waiting_helpers import one_deployment, scheduler, turn


def two_deployments(d2: bool = True, **limits: object) -> TreeSpec:
    names = ["d1", "d2"] if d2 else ["d1"]
    return TreeSpec(
        groups=[
            Group("g", [Member(deployment=n, limits=Limits(rpm=100)) for n in names]),
            Group("top", [Member(group="g")], limits=Limits(tpm=10_000)),
        ],
        deployments=[Deployment(n, Limits(**limits)) for n in names],
    )


def busy(clock: FakeClock) -> tuple[Scheduler, list[Lease]]:
    s = scheduler(two_deployments(rpm=10, tpm=1000, max_parallel_requests=5), clock)
    leases = [s.acquire("top", tokens=100) for _ in range(4)]
    leases[0].fail(retry_after=30.0)
    clock.advance(3.0)
    return s, leases


def test_the_same_config_keeps_every_bucket_lease_and_cooldown() -> None:
    clock = FakeClock()
    s, _ = busy(clock)
    before = s.snapshot()
    s.reconfigure(two_deployments(rpm=10, tpm=1000, max_parallel_requests=5))
    assert s.snapshot() == before


def test_the_failure_history_carries_over() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=100), clock)
    s.allowed_fails = 1
    s.acquire("g").fail()
    s.reconfigure(one_deployment(rpm=100))
    s.acquire("g").fail()  # the second failure within the minute: cooldown
    assert s.snapshot().deployments["d"].cooling_for == pytest.approx(s.cooldown_time)


def test_a_smaller_limit_clamps_what_is_left_and_a_larger_one_gives_nothing_for_free() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(tpm=1000), clock)
    s.acquire("g", tokens=200).release(tokens=200)

    def left() -> float:
        return s.snapshot().deployments["d"].buckets[0].remaining

    assert left() == 800
    s.reconfigure(one_deployment(tpm=2000))
    assert left() == pytest.approx(800)  # not raised to 1,800 or 2,000
    s.reconfigure(one_deployment(tpm=500))
    assert left() == pytest.approx(500)  # clamped
    clock.advance(60.0)
    assert left() == pytest.approx(500)  # full at the new capacity


def test_a_changed_limit_applies_from_now_on() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)
    s.acquire("g")
    s.reconfigure(one_deployment(rpm=60))  # empty, now refilling one a second
    assert s.try_acquire("g") is None
    clock.advance(1.0)
    assert s.try_acquire("g") is not None


def test_a_removed_deployment_gets_no_traffic_and_its_leases_still_settle() -> None:
    s = scheduler(two_deployments(tpm=1000))
    leases = [s.acquire("top", tokens=100) for _ in range(8)]
    d2 = [lease for lease in leases if lease.deployment_id == "d2"]
    assert d2
    s.reconfigure(two_deployments(d2=False, tpm=1000))
    assert set(s.snapshot().deployments) == {"d1"}
    assert all(s.acquire("top").deployment_id == "d1" for _ in range(20))
    d2[0].fail(retry_after=60.0)  # no error, and no cooldown lands anywhere
    for lease in d2[1:]:
        lease.release(tokens=0)
    snap = s.snapshot()
    assert snap.deployments["d1"].cooling_for == 0
    # The group kept its count: leases through it that went to d2 still left it.
    assert snap.groups["top"].in_flight == 20 + (8 - len(d2))
    assert snap.groups["top"].buckets[0].remaining == 10_000 - 100 * (8 - len(d2))


def test_leases_spanning_a_reconfiguration_settle_once_on_the_kept_state() -> None:
    clock = FakeClock()
    s = scheduler(two_deployments(tpm=1000, max_parallel_requests=3), clock)
    leases = [s.acquire("top", tokens=300) for _ in range(4)]
    s.reconfigure(two_deployments(tpm=1000, max_parallel_requests=3))
    s.reconfigure(two_deployments(tpm=1000, max_parallel_requests=3))  # forwarded twice
    for lease in leases:
        lease.release(tokens=100)
        lease.release(tokens=100)  # a second release still does nothing
    snap = s.snapshot()
    assert all(g.in_flight == 0 for g in (*snap.groups.values(), *snap.deployments.values()))
    assert all(g.in_flight == 0 for g in snap.references)
    assert snap.groups["top"].buckets[0].remaining == 10_000 - 4 * 100
    per = {d: sum(lease.deployment_id == d for lease in leases) for d in ("d1", "d2")}
    for d, n in per.items():
        assert snap.deployments[d].buckets[0].remaining == 1000 - n * 100


def test_an_invalid_config_raises_and_changes_nothing() -> None:
    clock = FakeClock()
    s, leases = busy(clock)
    before, spec = s.snapshot(), s.spec
    bad = TreeSpec(groups=[Group("g", [Member(deployment="missing")])], deployments=[])
    with pytest.raises(ConfigError, match="missing"):
        s.reconfigure(bad)
    with pytest.raises(ConfigError):
        s.reconfigure_litellm([{"model_name": "x"}])
    assert s.snapshot() == before and s.spec is spec
    leases[1].release()
    assert s.snapshot().deployments != before.deployments


def test_reconfigure_from_a_litellm_model_list_keeps_the_deployment_state() -> None:
    def model_list(rpm: int) -> list[dict[str, object]]:
        # The id is explicit: a generated one hashes the entry, so a new rpm would make
        # it a new deployment with fresh buckets.
        return [
            {
                "model_name": "m",
                "litellm_params": {"model": "p/x", "rpm": rpm},
                "model_info": {"id": "x-1"},
            }
        ]

    clock = FakeClock()
    s = Scheduler.from_litellm(model_list(2), clock=clock)
    s.acquire("m")
    s.acquire("m")
    s.reconfigure_litellm(model_list(3))
    assert s.try_acquire("m") is None  # still empty: 2 used, capacity raised for nothing
    clock.advance(20.0)
    assert s.try_acquire("m") is not None


def test_a_raised_limit_wakes_a_waiter_at_once() -> None:
    s = scheduler(one_deployment(max_parallel_requests=1))
    s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g"))
        await turn()
        assert not task.done()
        s.reconfigure(one_deployment(max_parallel_requests=2))
        await turn()
        assert isinstance(task.result(), Lease)

    asyncio.run(main())


def test_a_waiter_whose_group_is_removed_ends_with_unknown_group() -> None:
    s = scheduler(two_deployments(max_parallel_requests=1))
    s.acquire("g")
    s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("top"))
        await turn()
        s.reconfigure(
            TreeSpec(groups=[Group("g", [Member(deployment="d1")])], deployments=[Deployment("d1")])
        )
        await turn()
        assert isinstance(task.exception(), UnknownGroup)

    asyncio.run(main())
    assert s.waiting == 0


def test_a_lease_whose_whole_path_was_removed_can_still_fail_and_release() -> None:
    s = scheduler(one_deployment(rpm=10))
    failing, releasing = s.acquire("g"), s.acquire("g")
    s.reconfigure(
        TreeSpec(groups=[Group("h", [Member(deployment="e")])], deployments=[Deployment("e")])
    )
    failing.fail(retry_after=5.0)
    releasing.release(tokens=10)
    snap = s.snapshot()
    assert set(snap.deployments) == {"e"} and snap.deployments["e"].in_flight == 0


def test_a_waiter_too_large_for_the_new_config_ends_with_a_value_error() -> None:
    s = scheduler(one_deployment(tpm=1000))
    s.acquire("g", tokens=1000)

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g", tokens=800))
        await turn()
        s.reconfigure(one_deployment(tpm=500))
        await turn()
        assert isinstance(task.exception(), ValueError)

    asyncio.run(main())
    assert s.waiting == 0
