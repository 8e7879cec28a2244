"""acquire_wait: a blocked thread is woken by a release from another thread, by the
scheduler's timer (driven here through FakeClock), and ends at its deadline."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable

import pytest

from ratetree import Lease, NoCapacity, Scheduler
from ratetree.testing import FakeClock
from waiting_helpers import one_deployment, scheduler


def until(predicate: Callable[[], bool]) -> None:
    """Yield the processor until ``predicate`` holds (another thread must make it so)."""
    for _ in range(10_000_000):
        if predicate():
            return
        os.sched_yield()
    raise AssertionError("the other thread never got there")


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    out: list[object] = []

    def run() -> None:
        try:
            out.append(target())
        except Exception as err:
            out.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def test_acquire_wait_returns_at_once_when_capacity_is_there() -> None:
    assert scheduler(one_deployment(rpm=1)).acquire_wait("g").deployment_id == "d"


def test_a_release_in_one_thread_wakes_a_waiting_thread() -> None:
    s = scheduler(one_deployment(max_parallel_requests=1))
    held = s.acquire("g")
    thread, out = in_thread(lambda: s.acquire_wait("g"))
    until(lambda: s.waiting == 1)
    held.release()
    thread.join()
    assert isinstance(out[0], Lease)


def test_the_timer_wakes_a_waiting_thread_at_the_refill_moment() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)
    s.acquire("g")
    thread, out = in_thread(lambda: s.acquire_wait("g"))
    until(lambda: s.waiting == 1)
    clock.advance(100.0)
    thread.join()
    assert isinstance(out[0], Lease)
    # Granted at 60, the bucket is full again at 120; granted at 100 it would be at 160.
    granted_at, period = 60.0, 60.0
    remaining = 1 - (granted_at + period - clock()) / period
    assert s.snapshot().deployments["d"].buckets[0].remaining == pytest.approx(remaining)


def test_a_waiting_thread_ends_at_its_deadline() -> None:
    clock = FakeClock()
    s = scheduler(one_deployment(rpm=1), clock)
    s.acquire("g")
    thread, out = in_thread(lambda: s.acquire_wait("g", timeout=2.0))
    until(lambda: s.waiting == 1)
    clock.advance(2.0)
    thread.join()
    assert isinstance(out[0], NoCapacity) and out[0].retry_after == pytest.approx(58.0)


def test_threads_waiting_on_a_real_clock_never_exceed_the_in_flight_cap() -> None:
    s = Scheduler(one_deployment(max_parallel_requests=2), rng=random.Random(1))
    inside = 0
    most = 0
    count = threading.Lock()

    def worker() -> None:
        nonlocal inside, most
        for _ in range(200):
            with s.acquire_wait("g", timeout=30.0):
                with count:
                    inside += 1
                    most = max(most, inside)
                with count:
                    inside -= 1

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most <= 2 and s.waiting == 0
    assert s.snapshot().deployments["d"].in_flight == 0
