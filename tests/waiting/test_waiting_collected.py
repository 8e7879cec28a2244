"""A waiting task collected unfinished (its event loop closed while it waited) gives its
capacity back, even when the collection runs in a thread that holds the scheduler's lock."""

from __future__ import annotations

import asyncio
import gc
import threading
import time

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec

SPEC = TreeSpec(
    groups=[Group("g", members=[Member(deployment="d")], limits=Limits(max_parallel_requests=1))],
    deployments=[Deployment("d")],
)


class CollectingClock:
    """A real clock that, when asked to, collects garbage while the scheduler reads it:
    under the scheduler's lock."""

    def __init__(self) -> None:
        self.collect = False

    def __call__(self) -> float:
        if self.collect:
            self.collect = False
            gc.collect()
        return time.monotonic()


def test_a_collected_waiter_gives_its_lease_back_without_deadlocking() -> None:
    clock = CollectingClock()
    s = Scheduler(SPEC, clock=clock)
    held = s.acquire("g")
    loop = asyncio.new_event_loop()
    task = loop.create_task(s.acquire_async("g", timeout=None))
    loop.run_until_complete(asyncio.sleep(0))  # the task joined the queue
    assert s.waiting == 1
    held.release()  # granted to the waiter, which never runs again
    loop.close()
    gc.disable()  # collected where this test says: under the lock
    cycle: list[object] = [task]
    cycle.append(cycle)  # only the collector can free the task now
    del task, cycle
    refused: list[object] = []
    try:
        clock.collect = True
        done = threading.Event()

        def attempt() -> None:
            refused.append(s.try_acquire("g"))  # the collected waiter still holds d
            done.set()

        threading.Thread(target=attempt, daemon=True).start()
        assert done.wait(10.0), "the collection deadlocked on the scheduler's lock"
    finally:
        gc.enable()
    assert refused == [None]
    # The collected waiter's lease comes back from a thread of its own.
    deadline = time.monotonic() + 10.0
    while s.snapshot().groups["g"].in_flight and time.monotonic() < deadline:
        time.sleep(0.001)
    assert s.snapshot().groups["g"].in_flight == 0
    assert s.waiting == 0
    lease = s.try_acquire("g")
    assert lease is not None
    lease.release()
