"""explain() reports the wait queue: a request held back by a queued waiter on a group
that shares a deployment with it is not promised, and the waiter is named."""

from __future__ import annotations

import asyncio
import random

import pytest

from ratetree import (
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    Scheduler,
    TreeSpec,
    WaiterSnapshot,
)
from ratetree.testing import FakeClock
from waiting_helpers import scheduler, turn


def overlapping() -> TreeSpec:
    """ "batch" and "interactive" share deployment "d" (600 tokens a minute); interactive
    also has "own"; "other" shares nothing with either."""
    return TreeSpec(
        groups=[
            Group("batch", [Member(deployment="d")]),
            Group("interactive", [Member(deployment="d"), Member(deployment="own")]),
            Group("other", [Member(deployment="e")]),
        ],
        deployments=[Deployment("d", Limits(tpm=600)), Deployment("own"), Deployment("e")],
    )


def test_explain_does_not_promise_capacity_a_queued_waiter_holds() -> None:
    clock = FakeClock()
    s = scheduler(overlapping(), clock)
    s.acquire("batch", tokens=600)  # d's tokens are gone for a minute
    assert s.explain("interactive").admits  # nobody waits yet

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("batch", tokens=500, priority=1))
        await turn()
        clock.advance(5.0)
        explained = s.explain("interactive")
        assert not explained.admits and explained.candidates == ()
        assert explained.waiter == WaiterSnapshot("batch", 1.0, 500.0, 5.0)
        assert explained.waiters_ahead == 1
        assert all(child.role == "not reached" for child in explained.children)
        assert (
            "held for a queued waiter (group 'batch', priority 1, 500 tokens, "
            "waiting for 5 s)" in str(explained)
        )
        with pytest.raises(NoCapacity) as refused:  # acquire agrees
            s.acquire("interactive")
        assert refused.value.retry_after is None
        # A group that shares nothing with the waiter is explained as before.
        other = s.explain("other")
        assert other.admits and other.waiter is None and other.waiters_ahead == 0
        assert s.acquire("other").deployment_id == "e"
        task.cancel()
        await turn()
        assert s.explain("interactive").admits and s.explain("interactive").waiter is None

    asyncio.run(main())


def test_explain_names_the_first_waiter_in_the_order_of_service() -> None:
    clock = FakeClock()
    s = scheduler(overlapping(), clock)
    s.acquire("batch", tokens=600)

    async def main() -> None:
        tasks = [asyncio.create_task(s.acquire_async("batch", tokens=400, priority=2))]
        await turn()
        clock.advance(1.0)
        tasks.append(asyncio.create_task(s.acquire_async("batch", tokens=300)))
        await turn()
        explained = s.explain("interactive", tokens=10)
        assert explained.waiter == WaiterSnapshot("batch", 0.0, 300.0, 0.0)  # priority 0
        assert explained.waiters_ahead == 2
        assert "1 more queued" in explained.reasons[-1]
        clock.advance(29.0)  # 300 tokens back at t=30: the priority 0 waiter is served
        await turn()
        assert tasks[1].done() and not tasks[0].done()
        assert s.explain("interactive").waiter == WaiterSnapshot("batch", 2.0, 400.0, 30.0)
        for task in tasks:
            task.cancel()
        await turn()

    asyncio.run(main())


def test_explain_serves_waiters_whose_moment_has_come_as_acquire_does() -> None:
    """A clock without ``call_at`` (a thread timer that has not fired yet): explain and
    acquire both let the due waiter go first."""
    now = [0.0]
    s = Scheduler(overlapping(), clock=lambda: now[0], rng=random.Random(7))
    s.acquire("batch", tokens=600)

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("batch", tokens=300))
        await turn()
        now[0] = 30.0  # the refill is due; the timer thread may not have run yet
        explained = s.explain("interactive")
        assert explained.admits and explained.waiter is None  # the waiter was served
        await turn()
        assert task.done()

    asyncio.run(main())
