"""A commit, release or failure completes or changes nothing, whatever the clock raises.

A clock that raises on its n-th reading is run through one sequence of operations, for
every n the sequence reads: the operation that met the raise must leave the scheduler as
if it never happened (or, had it got past every reading, as if it completed), and a lease
whose release met it is still open and releases normally afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from ratetree import Deployment, Group, Lease, Limits, Member, Rate, Scheduler, Snapshot, TreeSpec
from ratetree.testing import FakeClock

SPEC = TreeSpec(
    groups=[
        Group(
            "g",
            members=[Member(deployment="d1"), Member(deployment="d2")],
            limits=Limits(rpm=Rate(100, 60.0), tpm=Rate(1000, 60.0)),
        )
    ],
    deployments=[
        Deployment(f"d{i}", limits=Limits(rpm=Rate(10, 60.0), max_parallel_requests=2))
        for i in (1, 2)
    ],
)


class ClockFault(Exception):
    pass


class RaisingClock:
    """A FakeClock reading that raises ClockFault on reading number ``fail_at`` (1-based)."""

    def __init__(self, clock: FakeClock, fail_at: int) -> None:
        self.clock = clock
        self.fail_at = fail_at
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        if self.reads == self.fail_at:
            raise ClockFault(f"reading {self.reads}")
        return self.clock()


Leases = dict[str, Lease]
Step = Callable[[Scheduler, Leases, FakeClock], object]


def _take(name: str, tokens: float = 0) -> Step:
    def step(s: Scheduler, leases: Leases, clock: FakeClock) -> None:
        leases[name] = s.acquire("g", tokens=tokens)

    return step


STEPS: list[Step] = [
    _take("a", 10),
    _take("b", 5),
    lambda s, leases, clock: clock.advance(1.0),
    lambda s, leases, clock: leases["a"].release(3),
    lambda s, leases, clock: leases["b"].fail(),
    _take("c"),
    lambda s, leases, clock: leases["c"].fail(retry_after=2.0, tokens=4),
    lambda s, leases, clock: clock.advance(10.0),  # both cooldowns over
    _take("d", 20),
    lambda s, leases, clock: leases["d"].release(),
]


def _run(steps: list[Step], clock: Callable[[], float], fake: FakeClock) -> Scheduler:
    s = Scheduler(SPEC, clock=clock, rng=random.Random(7), allowed_fails=0)
    leases: Leases = {}
    for step in steps:
        step(s, leases, fake)
    return s


def _snapshot_after(steps: list[Step]) -> Snapshot:
    fake = FakeClock(5.0)
    return _run(steps, fake, fake).snapshot()


def _reads() -> int:
    fake = FakeClock(5.0)
    counting = RaisingClock(fake, fail_at=0)
    _run(STEPS, counting, fake)
    return counting.reads


@pytest.mark.parametrize("fail_at", range(1, _reads() + 1))
def test_an_operation_whose_clock_raises_completes_or_changes_nothing(fail_at: int) -> None:
    fake = FakeClock(5.0)
    clock = RaisingClock(fake, fail_at)
    s = Scheduler(SPEC, clock=clock, rng=random.Random(7), allowed_fails=0)
    leases: Leases = {}
    for i, step in enumerate(STEPS):
        before = dict(leases)
        try:
            step(s, leases, fake)
        except ClockFault:
            failed = i
            break
    else:
        pytest.fail("the clock never raised")
    after = s.snapshot()
    assert after in (_snapshot_after(STEPS[:failed]), _snapshot_after(STEPS[: failed + 1]))
    assert after == _snapshot_after(STEPS[:failed])  # every operation reads the clock first
    # A lease whose release met the fault is still open and settles normally now.
    assert [n for n, lease in before.items() if lease.released] == [
        n for n, lease in leases.items() if lease.released
    ]
    for lease in leases.values():
        lease.release()
    final = s.snapshot()
    assert all(g.in_flight == 0 for g in (*final.groups.values(), *final.deployments.values()))
