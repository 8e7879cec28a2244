"""acquire_async: exact wake-ups, order of service, deadlines, cancellation (FakeClock)."""

from __future__ import annotations

import asyncio

import pytest

from ratetree import Lease, NoCapacity, Snapshot, UnknownGroup
from ratetree.testing import FakeClock
from waiting_helpers import one_deployment, scheduler, shared_pair, turn


def test_a_waiter_is_admitted_at_the_exact_refill_moment() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)  # one request per 60 s
    s.acquire("g")
    refill = 60.0
    admitted_at: list[float] = []

    async def main() -> None:
        async def wait() -> None:
            await s.acquire_async("g")
            admitted_at.append(clock())

        task = asyncio.create_task(wait())
        await turn()
        assert s.waiting == 1 and clock.pending == 1
        clock.advance(refill - 1e-6)
        await turn()
        assert not task.done()
        clock.advance(1e-6)
        await turn()
        assert task.done()

    asyncio.run(main())
    assert admitted_at == [pytest.approx(refill, abs=1e-9)]
    assert s.waiting == 0


def test_a_release_wakes_a_waiter_held_by_an_in_flight_cap_without_any_timer() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(max_parallel_requests=1), clock)
    held = s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g"))
        await turn()
        assert not task.done() and clock.pending == 0  # nothing to wait for but a release
        held.release()
        await turn()
        assert task.done() and isinstance(task.result(), Lease)

    asyncio.run(main())


def test_a_waiter_is_admitted_when_a_cooldown_ends() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=100), clock)
    s.acquire("g").fail(retry_after=5.0)

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g"))
        await turn()
        clock.advance(4.999)
        await turn()
        assert not task.done()
        clock.advance(0.001)
        await turn()
        assert task.done()

    asyncio.run(main())


def test_a_waiter_already_admissible_does_not_wait() -> None:
    s = scheduler(one_deployment(rpm=1))

    async def main() -> Lease:
        return await s.acquire_async("g", timeout=0)

    assert asyncio.run(main()).deployment_id == "d"


def test_many_waiters_share_one_timer() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=10), clock)  # one request every 6 s
    for _ in range(10):
        s.acquire("g")
    served: list[tuple[int, float]] = []

    async def main() -> None:
        async def wait(i: int) -> None:
            await s.acquire_async("g")
            served.append((i, clock()))

        tasks = [asyncio.create_task(wait(i)) for i in range(50)]
        await turn()
        assert s.waiting == 50 and clock.pending == 1
        for _ in range(50):
            clock.advance(6.0)
            await turn()
            assert clock.pending <= 1
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert [i for i, _ in served] == list(range(50))  # first come, first served
    assert [t for _, t in served] == pytest.approx([6.0 * (i + 1) for i in range(50)])


def test_lower_priority_is_served_first_and_fifo_within_a_priority() -> None:
    s = scheduler(one_deployment(max_parallel_requests=1))
    held = s.acquire("g")
    order: list[str] = []

    async def main() -> None:
        async def wait(name: str, priority: int) -> None:
            lease = await s.acquire_async("g", priority=priority)
            order.append(name)
            await turn()
            lease.release()

        tasks = [
            asyncio.create_task(wait(name, p))
            for name, p in [("late-2", 2), ("first-1", 1), ("second-1", 1), ("urgent", 0)]
        ]
        await turn()
        held.release()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == ["urgent", "first-1", "second-1", "late-2"]


def test_waiters_on_groups_that_share_a_deployment_are_served_in_arrival_order() -> None:
    s = scheduler(shared_pair())
    held = s.acquire("a")
    order: list[str] = []

    async def main() -> None:
        async def wait(group: str) -> None:
            lease = await s.acquire_async(group)
            order.append(group)
            await turn()
            lease.release()

        tasks = []
        for group in ["b", "a", "b", "a"]:
            tasks.append(asyncio.create_task(wait(group)))
            await turn()
        held.release()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    assert order == ["b", "a", "b", "a"]


def test_a_blocked_waiter_does_not_hold_up_groups_that_share_nothing_with_it() -> None:
    s = scheduler(shared_pair())
    s.acquire("a")

    async def main() -> None:
        blocked = asyncio.create_task(s.acquire_async("b"))
        await turn()
        other = await asyncio.wait_for(s.acquire_async("c"), timeout=1)
        assert other.deployment_id == "e" and not blocked.done()
        blocked.cancel()

    asyncio.run(main())


def test_a_large_request_is_not_starved_by_a_stream_of_small_ones() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(tpm=600), clock)  # 10 tokens a second
    s.acquire("g", tokens=600)  # empty
    big_at: list[float] = []
    small_admitted = 0

    async def main() -> None:
        nonlocal small_admitted

        async def big() -> None:
            await s.acquire_async("g", tokens=500)
            big_at.append(clock())

        task = asyncio.create_task(big())
        await turn()
        # Every second, 10 tokens refill: enough for a small request, which would keep
        # the bucket from ever holding 500 if small requests could take it.
        while not task.done():
            clock.advance(1.0)
            if s.try_acquire("g", tokens=10) is not None:
                small_admitted += 1
            await turn()

    asyncio.run(main())
    assert big_at == [pytest.approx(50.0)]  # 500 tokens at 10/s
    assert small_admitted == 0  # plain acquires left the capacity to the waiter


def test_plain_acquire_is_refused_while_a_waiter_holds_the_capacity() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)
    s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g"))
        await turn()
        with pytest.raises(NoCapacity) as refused:
            s.acquire("g")
        assert refused.value.retry_after is None
        clock.advance(60.0)
        await turn()
        assert task.done()
        with pytest.raises(NoCapacity) as later:
            s.acquire("g")  # the waiter took the refilled request
        assert later.value.retry_after == pytest.approx(60.0)

    asyncio.run(main())


def test_a_timeout_ends_the_wait_with_no_capacity_and_the_retry_after() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)
    s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g", timeout=5.0))
        await turn()
        clock.advance(4.9)
        await turn()
        assert not task.done()
        clock.advance(0.1)
        await turn()
        with pytest.raises(NoCapacity) as ended:
            task.result()
        assert ended.value.retry_after == pytest.approx(55.0)

    asyncio.run(main())
    assert s.waiting == 0
    assert s.snapshot().deployments["d"].buckets[0].remaining == pytest.approx(5 / 60)


def test_fail_fast_raises_at_once_when_capacity_cannot_come_in_time() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)
    s.acquire("g")

    async def main() -> None:
        with pytest.raises(NoCapacity) as ended:
            await s.acquire_async("g", timeout=5.0, fail_fast=True)
        assert ended.value.retry_after == pytest.approx(60.0)
        assert clock() == 0.0 and s.waiting == 0
        # Capacity in time: fail_fast waits like any other waiter.
        task = asyncio.create_task(s.acquire_async("g", timeout=61.0, fail_fast=True))
        await turn()
        clock.advance(60.0)
        await turn()
        assert isinstance(task.result(), Lease)

    asyncio.run(main())


def test_a_timeout_behind_an_in_flight_cap_has_no_retry_after() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(max_parallel_requests=1), clock)
    s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g", timeout=1.0))
        await turn()
        assert clock.pending == 1  # the deadline
        clock.advance(1.0)
        await turn()
        with pytest.raises(NoCapacity) as ended:
            task.result()
        assert ended.value.retry_after is None

    asyncio.run(main())


def test_an_expired_head_lets_the_waiters_behind_it_through() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(tpm=600), clock)
    s.acquire("g", tokens=600)

    async def main() -> None:
        big = asyncio.create_task(s.acquire_async("g", tokens=600, timeout=2.0))
        await turn()
        small = asyncio.create_task(s.acquire_async("g", tokens=10))
        await turn()
        clock.advance(1.0)
        await turn()
        assert not small.done()  # behind the big one
        clock.advance(1.0)
        await turn()
        assert isinstance(big.exception(), NoCapacity)
        assert isinstance(small.result(), Lease)

    asyncio.run(main())


def test_a_cancelled_waiter_takes_nothing() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1, tpm=100), clock)
    s.acquire("g", tokens=50)
    before = s.snapshot()

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g", tokens=40))
        await turn()
        task.cancel()
        await turn()
        assert task.cancelled()

    asyncio.run(main())
    assert s.snapshot() == before and s.waiting == 0


def test_a_lease_granted_to_a_waiter_cancelled_in_the_same_instant_is_given_back() -> None:
    def run(cancel: bool) -> Snapshot:
        s = scheduler(one_deployment(rpm=5, tpm=1000, max_parallel_requests=1))
        held = s.acquire("g", tokens=100)

        async def main() -> None:
            task = asyncio.create_task(s.acquire_async("g", tokens=300))
            await turn()
            held.release(tokens=100)  # grants the lease to the waiter ...
            if cancel:
                task.cancel()  # ... which is cancelled before it could run
            await turn()
            assert task.cancelled() == cancel
            if not cancel:
                task.result().release(tokens=0)  # what a cancel should amount to, rpm aside

        asyncio.run(main())
        return s.snapshot()

    cancelled = run(cancel=True)
    assert cancelled.deployments["d"].in_flight == 0
    rpm, tpm = cancelled.deployments["d"].buckets
    assert tpm.remaining == 900  # only the held lease's 100 tokens
    assert rpm.remaining == 4  # only the held lease's request
    used = run(cancel=False).deployments["d"].buckets
    assert used[0].remaining == 3 and used[1].remaining == 900


def test_unknown_group_and_bad_arguments_raise_before_waiting() -> None:
    s = scheduler(one_deployment(tpm=100))

    async def main() -> None:
        with pytest.raises(UnknownGroup):
            await s.acquire_async("nope")
        with pytest.raises(ValueError, match="exceeds every path"):
            await s.acquire_async("g", tokens=101)
        with pytest.raises(ValueError, match="timeout"):
            await s.acquire_async("g", timeout=-1)
        with pytest.raises(ValueError, match="priority"):
            await s.acquire_async("g", priority=float("nan"))

    asyncio.run(main())
    assert s.waiting == 0


def test_a_lease_for_a_waiter_whose_event_loop_closed_is_given_back() -> None:
    s = scheduler(one_deployment(rpm=5, max_parallel_requests=1))
    held = s.acquire("g")
    loop = asyncio.new_event_loop()

    async def start() -> asyncio.Task[Lease]:
        task = asyncio.create_task(s.acquire_async("g"))
        await turn()
        return task

    task = loop.run_until_complete(start())
    loop.close()  # the waiting task is abandoned with its loop
    held.release()  # grants the lease, cannot wake the task, takes the lease back
    gate = s.snapshot().deployments["d"]
    assert s.waiting == 0 and gate.in_flight == 0
    assert gate.buckets[0].remaining == 4  # only the held lease's request
    del task
