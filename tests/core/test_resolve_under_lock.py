"""A request's group is looked up under the same lock that admits it, so a reconfiguration
can never slip in between: nothing is admitted on a retired tree, and in-flight counts
never go below zero.

The stress tests keep their own count of leases held (raised after acquire returns,
lowered before release), which can only trail the scheduler's, and check it against the
cap while another thread reconfigures in a loop.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from ratetree import (
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    Scheduler,
    Snapshot,
    TreeSpec,
    UnknownGroup,
)
from ratetree.testing import FakeClock

CAP = 2


def spec(*extra: str, cap: int = CAP) -> TreeSpec:
    ids = ("d1", "d2", *extra)
    return TreeSpec(
        groups=[
            Group(
                "g",
                members=[Member(deployment=d) for d in ids],
                limits=Limits(max_parallel_requests=cap),
            )
        ],
        deployments=[Deployment(d) for d in ids],
    )


def in_flight(snapshot: Snapshot) -> list[int]:
    gates = (*snapshot.groups.values(), *snapshot.deployments.values(), *snapshot.references)
    return [g.in_flight for g in gates]


class Reconfiguring(str):
    """A group name whose hashing reconfigures the scheduler once, the moment a lookup
    outside the lock would hash it."""

    scheduler: Scheduler | None = None
    fired = False

    def __hash__(self) -> int:
        if self.scheduler is not None and not self.fired:
            self.fired = True
            self.scheduler.reconfigure(spec("d3", cap=1))
        return str.__hash__(self)


def test_a_name_that_reconfigures_when_hashed_cannot_admit_on_the_retired_tree() -> None:
    s = Scheduler(spec(cap=1), clock=FakeClock())
    name = Reconfiguring("g")
    name.scheduler = s
    first = s.acquire(name)
    with pytest.raises(NoCapacity):
        s.acquire("g")  # the cap of one is taken, on whichever tree is live
    first.release()
    assert min(in_flight(s.snapshot())) == 0
    s.acquire("g").release()
    assert in_flight(s.snapshot()) == [0] * len(in_flight(s.snapshot()))


def test_a_lease_granted_before_a_reconfiguration_settles_on_the_live_state() -> None:
    s = Scheduler(spec(cap=1), clock=FakeClock())
    first = s.acquire("g")
    s.reconfigure(spec("d3", cap=1))
    with pytest.raises(NoCapacity):
        s.acquire("g")
    first.release()
    first.release()  # a second release does nothing
    assert min(in_flight(s.snapshot())) == 0
    s.acquire("g").release()


class Impostor:
    """Not a string, but claims to equal one and hashes like it."""

    def __hash__(self) -> int:
        return hash("g")

    def __eq__(self, other: object) -> bool:
        return other == "g"


def test_a_name_that_is_no_string_is_an_unknown_group() -> None:
    s = Scheduler(spec(), clock=FakeClock())
    with pytest.raises(UnknownGroup):
        s.acquire(Impostor())


class Holdings:
    """Leases held, counted outside the scheduler; remembers the largest count seen."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held = 0
        self.most = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.held += n
            self.most = max(self.most, self.held)


def _reconfigure_until(s: Scheduler, done: threading.Event, seen: list[int]) -> None:
    specs = (spec(), spec("d3"))
    i = 0
    while not done.is_set():
        s.reconfigure(specs[i % 2])
        seen.append(min(in_flight(s.snapshot())))
        i += 1


def test_threads_acquiring_while_another_reconfigures_never_pass_the_cap() -> None:
    s = Scheduler(spec(), clock=FakeClock())
    holdings = Holdings()
    done = threading.Event()
    lowest: list[int] = []

    def work() -> None:
        for _ in range(1500):
            lease = s.try_acquire("g")
            if lease is not None:
                holdings.add(1)
                holdings.add(-1)
                lease.release()

    workers = [threading.Thread(target=work) for _ in range(4)]
    changer = threading.Thread(target=_reconfigure_until, args=(s, done, lowest))
    changer.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    done.set()
    changer.join()
    assert holdings.most <= CAP
    assert lowest and min(lowest) >= 0
    assert set(in_flight(s.snapshot())) == {0}


def test_tasks_waiting_while_a_thread_reconfigures_never_pass_the_cap() -> None:
    s = Scheduler(spec(), clock=FakeClock())
    holdings = Holdings()
    done = threading.Event()
    lowest: list[int] = []

    async def work() -> None:
        for _ in range(200):
            lease = await s.acquire_async("g")
            holdings.add(1)
            await asyncio.sleep(0)  # hold it across a switch to the other tasks
            holdings.add(-1)
            lease.release()

    async def main() -> None:
        await asyncio.wait_for(asyncio.gather(*(work() for _ in range(6))), timeout=120)

    changer = threading.Thread(target=_reconfigure_until, args=(s, done, lowest))
    changer.start()
    try:
        asyncio.run(main())
    finally:
        done.set()
        changer.join()
    assert holdings.most <= CAP
    assert lowest and min(lowest) >= 0
    assert set(in_flight(s.snapshot())) == {0} and s.waiting == 0
