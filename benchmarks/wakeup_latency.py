"""Wake-up latency of waiting acquires, on the real clock.

Usage (from the repository root, with ratetree installed)::

    python benchmarks/wakeup_latency.py [--rounds N]

For asyncio (``acquire_async``) and threads (``acquire_wait``), and for two ways capacity
returns, it measures the time from the moment capacity appears to the moment the waiting
caller runs again, and prints the median, p90 and p99 in microseconds:

- *release*: one request in flight is allowed; another task (or thread) holds it and
  releases it. Latency = end of the wait minus the moment just before ``release()``.
- *refill*: a bucket of one request per 5 ms is empty; the waiter is woken by the
  scheduler's one timer. Latency = end of the wait minus the refill moment the scheduler
  itself computed (the clock reading of the refused acquire plus its ``retry_after``).

For comparison, a poll every 30 ms (LiteLLM's request-priority scheduler) wakes a held
request 15 ms late on average. Nothing here is asserted; the numbers go in docs/waiting.md.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import threading
import time

from ratetree import Deployment, Group, Limits, Member, NoCapacity, Rate, Scheduler, TreeSpec

REFILL_PERIOD = 0.005


class RecordingClock:
    """time.perf_counter that remembers its last reading, to learn the refill moment."""

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self) -> float:
        self.last = time.perf_counter()
        return self.last


def make(limits: Limits) -> tuple[Scheduler, RecordingClock]:
    clock = RecordingClock()
    spec = TreeSpec(
        groups=[Group("g", [Member(deployment="d")])], deployments=[Deployment("d", limits)]
    )
    return Scheduler(spec, clock=clock), clock


def refill_moment(s: Scheduler, clock: RecordingClock) -> float:
    """Empty the bucket; return the moment it admits the next request."""
    while True:
        try:
            s.acquire("g")
        except NoCapacity as refused:
            assert refused.retry_after is not None
            return clock.last + refused.retry_after


async def async_release(rounds: int) -> list[float]:
    s, _ = make(Limits(max_parallel_requests=1))
    out = []
    for _ in range(rounds):
        held = s.acquire("g")
        waiter = asyncio.create_task(s.acquire_async("g"))
        await asyncio.sleep(0)  # the waiter queues
        start = time.perf_counter()
        held.release()
        lease = await waiter
        out.append(time.perf_counter() - start)
        lease.release()
    return out


async def async_refill(rounds: int) -> list[float]:
    s, clock = make(Limits(rpm=(Rate(1, REFILL_PERIOD),)))
    out = []
    for _ in range(rounds):
        ready = refill_moment(s, clock)
        await s.acquire_async("g")
        out.append(time.perf_counter() - ready)
    return out


def thread_release(rounds: int) -> list[float]:
    s, _ = make(Limits(max_parallel_requests=1))
    starts: queue.Queue[float] = queue.Queue()
    out = []

    def waiter() -> None:
        for _ in range(rounds):
            lease = s.acquire_wait("g")
            out.append(time.perf_counter() - starts.get())
            lease.release()

    held = s.acquire("g")
    thread = threading.Thread(target=waiter)
    thread.start()
    for i in range(rounds):
        while s.waiting == 0:  # let the waiter queue
            time.sleep(0)
        starts.put(time.perf_counter())
        held.release()
        if i + 1 < rounds:
            held = s.acquire_wait("g")  # queues behind nobody: the waiter has released
    thread.join()
    return out


def thread_refill(rounds: int) -> list[float]:
    s, clock = make(Limits(rpm=(Rate(1, REFILL_PERIOD),)))
    out = []
    for _ in range(rounds):
        ready = refill_moment(s, clock)
        s.acquire_wait("g")
        out.append(time.perf_counter() - ready)
    return out


def row(name: str, samples: list[float]) -> str:
    us = sorted(x * 1e6 for x in samples)
    q = statistics.quantiles(us, n=100)
    return f"| {name} | {len(us)} | {statistics.median(us):.0f} | {q[89]:.0f} | {q[98]:.0f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1000)
    n = parser.parse_args().rounds
    print("| waiter, capacity returns by | rounds | median µs | p90 µs | p99 µs |")
    print("|---|---|---|---|---|")
    print(row("asyncio, release by another task", asyncio.run(async_release(n))))
    print(row("asyncio, bucket refill (timer)", asyncio.run(async_refill(n))))
    print(row("thread, release by another thread", thread_release(n)))
    print(row("thread, bucket refill (timer)", thread_refill(n)))


if __name__ == "__main__":
    main()
