"""pytest-benchmark cases: one ``acquire("a")`` + ``release()`` on a group whose deployment
no waiter can use, with 0 or 2,000 waiters queued on other groups (half of them held by an
in-flight cap, half by an empty request bucket, so the timer is armed too). The waiters
are spread over 2,000 groups or over 20, each with a deployment of its own.

    .venv/bin/python -m pytest benchmarks/test_queued_release.py \\
        --benchmark-columns=median,iqr,rounds

``benchmarks/queued_release.py`` times the same with a plain timer, for commits whose
queue takes too long to fill for pytest-benchmark's rounds.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from typing import Any

import pytest

from ratetree import Deployment, Group, Lease, Limits, Member, Scheduler, TreeSpec
from ratetree.testing import FakeClock

WAITERS = 2000


def spec(groups: int) -> TreeSpec:
    """Group "a" on deployment "da"; groups "g0".. each on a deployment of its own, which
    admits one request in flight (even ones) or one a minute (odd ones)."""
    return TreeSpec(
        groups=[
            Group("a", [Member(deployment="da")]),
            *(Group(f"g{i}", [Member(deployment=f"d{i}")]) for i in range(groups)),
        ],
        deployments=[
            Deployment("da"),
            *(
                Deployment(f"d{i}", Limits(max_parallel_requests=1) if i % 2 else Limits(rpm=1))
                for i in range(groups)
            ),
        ],
    )


def queue_waiters(
    waiters: int, groups: int
) -> tuple[Scheduler, asyncio.AbstractEventLoop, list[asyncio.Task[Lease]]]:
    """A scheduler with ``waiters`` waits queued round-robin on ``groups`` groups, and the
    loop and tasks that wait (cancel them, then run the loop once, to end them)."""
    s = Scheduler(spec(max(groups, 1)), clock=FakeClock(), rng=random.Random(1))
    for i in range(groups):
        s.acquire(f"g{i}")  # the group's one request is taken: its waiters queue
    loop = asyncio.new_event_loop()
    tasks = [loop.create_task(s.acquire_async(f"g{i % groups}")) for i in range(waiters)]
    loop.run_until_complete(asyncio.sleep(0))
    assert s.waiting == waiters
    return s, loop, tasks


@pytest.fixture(params=[(0, 0), (WAITERS, 2000), (WAITERS, 20)], ids=lambda p: f"{p[0]}on{p[1]}")
def queued(request: Any) -> Iterator[Scheduler]:
    s, loop, tasks = queue_waiters(*request.param)
    yield s
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    assert s.waiting == 0
    loop.close()


def test_release_with_waiters_on_other_groups(benchmark: Any, queued: Scheduler) -> None:
    acquire = queued.acquire

    def run() -> None:
        acquire("a").release()

    benchmark.group = "acquire + release on a group no waiter shares"
    benchmark(run)
    assert queued.waiting in (0, WAITERS)
