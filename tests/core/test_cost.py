"""Selection does not visit every deployment of a large group (issue point 6g).

Work is counted, not timed: a trace function counts the Python lines ratetree executes for
a batch of acquire + release, on trees of 100 and 10,000 deployments with 90% of them out
of service. Timings live in ``benchmarks/``; this shows the shape of the cost.
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

import ratetree
from ratetree import Deployment, Group, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.core.specs import Strategy
from ratetree.testing import FakeClock

PACKAGE = str(Path(ratetree.__file__).parent)


def lines_executed(work: Callable[[], object]) -> int:
    count = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename.startswith(PACKAGE) else None

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def scheduler(n: int, strategy: Strategy, shape: str, out_of_service: float = 0.9) -> Scheduler:
    """n deployments with rpm limits, a share of them cooling down for good."""
    ids = [f"d{i}" for i in range(n)]
    deployments = [Deployment(i, Limits(rpm=10**6)) for i in ids]
    solos = [Group(f"solo-{i}", [Member(deployment=i)]) for i in ids]
    if shape == "flat":
        groups = [Group("root", [Member(deployment=i) for i in ids], strategy)]
    else:
        k = max(1, round(n ** (1 / 3)))
        leaves = [ids[j :: k * k] for j in range(k * k)]
        groups = [
            Group(f"leaf{j}", [Member(deployment=i) for i in leaf], strategy)
            for j, leaf in enumerate(leaves)
        ]
        groups += [
            Group(
                f"mid{m}", [Member(group=f"leaf{j}") for j in range(m * k, (m + 1) * k)], strategy
            )
            for m in range(k)
        ]
        groups.append(Group("root", [Member(group=f"mid{m}") for m in range(k)], strategy))
    s = Scheduler(TreeSpec(groups + solos, deployments), clock=FakeClock(), rng=random.Random(1))
    cooling = random.Random(2).sample(ids, round(n * out_of_service))
    for rank, i in enumerate(cooling):
        # Staggered, so the refusal search has distinct moments to order.
        s.acquire(f"solo-{i}").fail(retry_after=10**6 + rank)
    return s


@pytest.mark.parametrize("shape", ["flat", "tree"])
@pytest.mark.parametrize("strategy", ["shuffle", "round-robin", "least-busy", "usage-based"])
def test_a_hundred_times_more_deployments_cost_at_most_twice_the_work(
    strategy: Strategy, shape: str
) -> None:
    def batch(s: Scheduler) -> Callable[[], None]:
        def run() -> None:
            for _ in range(50):
                s.acquire("root", tokens=10).release(tokens=5)

        return run

    small, large = (scheduler(n, strategy, shape) for n in (100, 10_000))
    small_work, large_work = lines_executed(batch(small)), lines_executed(batch(large))
    assert large_work <= 2 * small_work, (small_work, large_work)


@pytest.mark.parametrize("shape", ["flat", "tree"])
@pytest.mark.parametrize("tokens", [0, 10])
def test_a_refusal_and_its_retry_after_cost_no_walk_over_every_deployment(
    tokens: int, shape: str
) -> None:
    def batch(s: Scheduler) -> Callable[[], None]:
        def run() -> None:
            for i in range(50):
                # A new token count each time: no answer can come from the cache.
                with pytest.raises(NoCapacity):
                    s.acquire("root", tokens=tokens and tokens + i)

        return run

    small, large = (scheduler(n, "shuffle", shape, out_of_service=1.0) for n in (100, 10_000))
    small_work, large_work = lines_executed(batch(small)), lines_executed(batch(large))
    assert large_work <= 2 * small_work, (small_work, large_work)
