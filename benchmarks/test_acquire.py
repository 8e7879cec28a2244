"""pytest-benchmark cases: one ``acquire(tokens=100)`` + ``release(80)`` per iteration.

Run through ``python benchmarks/run.py``, which picks the rounds and renders the table;
``extra_info`` carries the case's coordinates so the report never has to parse test ids.
The suite lives outside ``tests/`` so the ordinary test run never pays for it.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import ratetree
from ratetree import NoCapacity, Scheduler
from trees import (
    CASES,
    FULLNESSES,
    ROOT,
    SIZES,
    STRATEGIES,
    Case,
    Fullness,
    Strategy,
    build,
    build_refusing,
)

# Reserve more than is used so release() takes the settle path (a refund on every token
# bucket of the path), as a router does once the provider reports real usage.
RESERVED = 100
USED = 80
THREADS_SIZE = 1000
# Requests per round of the thread cases, split evenly over the threads: ~0.1 s a round,
# so starting and joining the threads (~0.1 ms) is noise.
THREAD_REQUESTS = 4000 if os.environ.get("RATETREE_BENCH_QUICK") else 20_000
THREAD_ROUNDS = 3 if os.environ.get("RATETREE_BENCH_QUICK") else 15


# What latency-based requests report on release, in turn: the averages keep moving, so
# every release refiles its deployment (and its groups) in the latency index.
LATENCIES = (0.8, 1.1, 0.9, 1.3, 1.0)


def one_request(scheduler: Scheduler, strategy: Strategy = "shuffle") -> Callable[[], None]:
    acquire = scheduler.acquire
    if strategy == "latency-based":
        latencies = itertools.cycle(LATENCIES)

        def run_reporting_latency() -> None:
            acquire(ROOT, tokens=RESERVED).release(USED, latency=next(latencies))

        return run_reporting_latency

    def run() -> None:
        acquire(ROOT, tokens=RESERVED).release(USED)

    return run


@pytest.mark.parametrize("fullness", FULLNESSES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("size", SIZES)
def test_acquire(
    benchmark: Any, size: int, case: Case, strategy: Strategy, fullness: Fullness
) -> None:
    """The grid: three-level tree, one flat group, and the tree with a tight limit on its
    root group (full after every acquire, open again after every release)."""
    scheduler = build(
        size,
        strategy,
        fullness,
        shape="flat" if case == "flat" else "tree",
        tight_limit=case == "tight",
    )
    benchmark.group = f"{case} {size}"
    benchmark.extra_info.update(case=case, size=size, strategy=strategy, fullness=fullness)
    benchmark(one_request(scheduler, strategy))


@pytest.mark.parametrize("strategy", ["shuffle", "usage-based"])
@pytest.mark.parametrize("size", SIZES)
def test_pick_alone(benchmark: Any, size: int, strategy: Strategy) -> None:
    """``acquire`` alone, in the flat group with ample capacity: the step LiteLLM's
    ``async_get_available_deployment`` does, for a pick-for-pick comparison. The leases are
    dropped unreleased; ample buckets outlast the run, and no limit caps leases in flight."""
    acquire = build(size, strategy, shape="flat").acquire

    def pick() -> None:
        acquire(ROOT, tokens=RESERVED)

    benchmark.group = f"pick {size}"
    benchmark.extra_info.update(case="pick", size=size, strategy=strategy, fullness="ample")
    benchmark(pick)


@pytest.mark.parametrize("request_kind", ["minimal", "tokens"])
@pytest.mark.parametrize("size", SIZES)
def test_refusal(benchmark: Any, size: int, request_kind: str) -> None:
    """A refused request and its exact retry_after, with every deployment drained. The
    "tokens" requests cycle through more distinct counts than the scheduler remembers
    answers for, so every one is worked out afresh."""
    scheduler = build_refusing(size)
    counts = itertools.cycle(range(1000, 3048) if request_kind == "tokens" else [0])
    acquire = scheduler.acquire

    def refuse() -> None:
        try:
            acquire(ROOT, tokens=next(counts))
        except NoCapacity:
            return
        raise AssertionError("a drained tree admitted a request")

    benchmark.group = f"refusal {size}"
    benchmark.extra_info.update(
        case="refusal", size=size, strategy=request_kind, fullness="drained"
    )
    benchmark(refuse)


def test_threads(benchmark: Any) -> None:
    """THREAD_REQUESTS acquire+release on one scheduler (1,000-deployment tree, shuffle),
    from 1 thread and then split over 2 threads started together (the order alternating
    by round). Both run in started threads, so both pay the same start and join. One
    round times both, back to back, so a busy neighbour slows both alike: the ratio of
    each round's two times is what the report uses (its median and quartiles, in
    ``extra_info``), not two runs far apart."""
    scheduler = build(THREADS_SIZE, "shuffle")
    request = one_request(scheduler)
    times: dict[int, list[float]] = {1: [], 2: []}

    def timed(threads: int) -> None:
        share = THREAD_REQUESTS // threads

        def worker() -> None:
            for _ in range(share):
                request()

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        start = time.perf_counter()
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        times[threads].append(time.perf_counter() - start)

    def both() -> None:
        order = (1, 2) if len(times[1]) % 2 == 0 else (2, 1)
        for threads in order:
            timed(threads)

    benchmark.group = "threads"
    benchmark.pedantic(both, rounds=THREAD_ROUNDS, warmup_rounds=1)
    # Warm-up rounds are timed too; keep the measured rounds only.
    one, two = times[1][-THREAD_ROUNDS:], times[2][-THREAD_ROUNDS:]
    ratios = sorted(a / b for a, b in zip(one, two, strict=True))  # 2-thread rate / 1-thread
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    benchmark.extra_info.update(
        case="threads",
        size=THREADS_SIZE,
        requests=THREAD_REQUESTS,
        one_thread_s=statistics.median(one),
        two_threads_s=statistics.median(two),
        rate_ratio=statistics.median(ratios),
        rate_ratio_quartiles=[quartiles[0], quartiles[2]],
    )


def test_floor(benchmark: Any) -> None:
    """The least a rate-limited take can cost in pure Python: read the clock, one GCRA
    comparison, one store. The rate is so high it never refuses, like the "ample" cases."""
    interval = 1e-12  # seconds per request
    burst = 1e6 * interval  # tolerance: a million requests ahead of schedule
    state = [0.0]  # theoretical arrival time
    monotonic = time.monotonic

    def take() -> bool:
        now = monotonic()
        tat = state[0] if state[0] > now else now
        if tat - now > burst:
            return False
        state[0] = tat + interval
        return True

    benchmark.group = "floor"
    # Which build of ratetree this process measured (run.py runs this file in both).
    benchmark.extra_info.update(case="floor", compiled=ratetree.compiled)
    assert benchmark(take)
