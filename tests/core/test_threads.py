"""Many threads hammering one tight group: limits hold under contention.

The group has a request limit, its deployments an in-flight cap. Threads acquire and
release as fast as they can; the test keeps its own count of leases held per deployment
(raised after acquire returns, lowered before release is called, so it never exceeds the
scheduler's own count) and checks it never passes the cap. No sleeps, no timing asserts:
the clock is a fake one, either frozen or stepping forward on every reading.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from ratetree import Deployment, Group, Lease, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock

THREADS = 8
MAX_PARALLEL = 2
DEPLOYMENTS = 4


def tight_spec(group_rpm: object) -> TreeSpec:
    return TreeSpec(
        groups=[
            Group(
                "g",
                members=[Member(deployment=f"d{i}") for i in range(DEPLOYMENTS)],
                strategy="shuffle",
                limits=Limits(rpm=group_rpm),
            )
        ],
        deployments=[
            Deployment(f"d{i}", limits=Limits(max_parallel_requests=MAX_PARALLEL))
            for i in range(DEPLOYMENTS)
        ],
    )


class SteppingClock:
    """A fake clock that moves ``step`` seconds forward on every reading, under a lock, and
    remembers per thread the last reading it handed out."""

    def __init__(self, step: float) -> None:
        self._now = 0.0
        self._step = step
        self._lock = threading.Lock()
        self._last = threading.local()

    def __call__(self) -> float:
        with self._lock:
            self._now += self._step
            now = self._now
        self._last.value = now
        return now

    def last_reading(self) -> float:
        return float(self._last.value)

    def peek(self) -> float:
        with self._lock:
            return self._now


@contextmanager
def frequent_thread_switches() -> Iterator[None]:
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


class Hammer:
    """Runs ``THREADS`` workers; each holds up to two leases and releases the oldest."""

    def __init__(self, scheduler: Scheduler, on_admit: Callable[[Lease], None]) -> None:
        self.scheduler = scheduler
        self.on_admit = on_admit
        self.lock = threading.Lock()
        self.held: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.admitted = 0
        self.errors: list[BaseException] = []

    def worker(self, barrier: threading.Barrier, attempts: int) -> None:
        try:
            barrier.wait()
            mine: list[Lease] = []
            for _ in range(attempts):
                lease = self.scheduler.try_acquire("g")
                if lease is not None:
                    self.on_admit(lease)
                    with self.lock:
                        self.admitted += 1
                        d = lease.deployment_id
                        self.held[d] += 1
                        self.peak[d] = max(self.peak[d], self.held[d])
                    mine.append(lease)
                if mine and (lease is None or len(mine) >= 2):
                    self.release(mine.pop(0))
            while mine:
                self.release(mine.pop())
        except BaseException as exc:  # surfaced by the test after join
            self.errors.append(exc)

    def release(self, lease: Lease) -> None:
        with self.lock:
            self.held[lease.deployment_id] -= 1
        lease.release()

    def run(self, attempts: int) -> None:
        barrier = threading.Barrier(THREADS)
        threads = [
            threading.Thread(target=self.worker, args=(barrier, attempts)) for _ in range(THREADS)
        ]
        with frequent_thread_switches():
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert not self.errors, self.errors


def assert_all_idle(scheduler: Scheduler) -> None:
    snap = scheduler.snapshot()
    assert snap.groups["g"].in_flight == 0
    for d in snap.deployments.values():
        assert d.in_flight == 0, d


def test_threads_on_a_frozen_clock_admit_exactly_the_group_request_limit() -> None:
    capacity = 40
    s = Scheduler(tight_spec(capacity), clock=FakeClock(100.0))
    hammer = Hammer(s, on_admit=lambda lease: None)
    hammer.run(attempts=500)  # 4000 attempts for 40 requests

    assert hammer.admitted <= capacity
    assert all(peak <= MAX_PARALLEL for peak in hammer.peak.values()), hammer.peak
    assert_all_idle(s)
    # Whatever the threads left over, the main thread can still take, and no more.
    leftover = []
    while (lease := s.try_acquire("g")) is not None:
        leftover.append(lease)
        lease.release()
    assert hammer.admitted + len(leftover) == capacity
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(60.0 / capacity)
    assert_all_idle(s)


def test_threads_never_exceed_the_in_flight_cap_of_a_deployment() -> None:
    # No request limit at all: only the in-flight caps bound what the threads hold.
    s = Scheduler(tight_spec(None), clock=FakeClock())
    hammer = Hammer(s, on_admit=lambda lease: None)
    hammer.run(attempts=500)

    assert hammer.admitted > 0
    assert all(peak <= MAX_PARALLEL for peak in hammer.peak.values()), hammer.peak
    assert_all_idle(s)
    held = [s.acquire("g") for _ in range(DEPLOYMENTS * MAX_PARALLEL)]
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after is None  # only a release can make room
    assert Counter(lease.deployment_id for lease in held) == {
        f"d{i}": MAX_PARALLEL for i in range(DEPLOYMENTS)
    }


def test_threads_on_a_moving_clock_never_admit_more_than_the_rate_allows() -> None:
    capacity, period = 20, 1.0
    clock = SteppingClock(step=0.001)
    s = Scheduler(tight_spec(f"{capacity}/second"), clock=clock)
    times: list[float] = []
    times_lock = threading.Lock()

    def on_admit(lease: Lease) -> None:
        with times_lock:
            times.append(clock.last_reading())  # the reading this acquire was decided at

    hammer = Hammer(s, on_admit=on_admit)
    hammer.run(attempts=500)

    assert all(peak <= MAX_PARALLEL for peak in hammer.peak.values()), hammer.peak
    assert_all_idle(s)
    times.sort()
    assert len(times) == hammer.admitted
    rate = capacity / period
    for i in range(len(times)):
        for j in range(i, len(times)):
            allowed = capacity + rate * (times[j] - times[i]) + 1e-6
            assert j - i + 1 <= allowed, (times[i], times[j], j - i + 1, allowed)
    # Demand (4000 attempts over several seconds of fake time) far exceeds the limit, so it binds.
    elapsed = clock.peek()
    assert hammer.admitted <= capacity + rate * elapsed
    assert hammer.admitted > capacity
