"""pytest-benchmark cases: one ``acquire(tokens=100)`` + ``release(80)`` per iteration.

Run through ``python benchmarks/run.py``, which picks the rounds and renders the table;
``extra_info`` carries the case's coordinates so the report never has to parse test ids.
The suite lives outside ``tests/`` so the ordinary test run never pays for it.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from ratetree import NoCapacity, Scheduler
from trees import FULLNESSES, ROOT, SIZES, STRATEGIES, Fullness, Strategy, build, build_refusing

# Reserve more than is used so release() takes the settle path (a refund on every token
# bucket of the path), as a router does once the provider reports real usage.
RESERVED = 100
USED = 80
VARIANT_SIZE = 1000


def one_request(scheduler: Scheduler) -> Callable[[], None]:
    acquire = scheduler.acquire

    def run() -> None:
        acquire(ROOT, tokens=RESERVED).release(USED)

    return run


@pytest.mark.parametrize("fullness", FULLNESSES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("size", SIZES)
def test_tree(benchmark: Any, size: int, strategy: Strategy, fullness: Fullness) -> None:
    """The headline grid: three-level tree, no group-level limits."""
    scheduler = build(size, strategy, fullness)
    benchmark.group = f"tree {size}"
    benchmark.extra_info.update(
        case="tree", shape="tree", size=size, strategy=strategy, fullness=fullness
    )
    benchmark(one_request(scheduler))


@pytest.mark.parametrize("fullness", FULLNESSES)
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("variant", ["root-limit", "flat"])
def test_variant(benchmark: Any, variant: str, strategy: Strategy, fullness: Fullness) -> None:
    """Shapes compared with the 1,000-deployment tree: a limit on the root group (one
    more gate on every path, refreshed on every commit and settle) and one flat group."""
    if variant == "flat":
        scheduler = build(VARIANT_SIZE, strategy, fullness, shape="flat")
    else:
        scheduler = build(VARIANT_SIZE, strategy, fullness, root_limit=True)
    benchmark.group = f"variant {VARIANT_SIZE}"
    benchmark.extra_info.update(
        case=variant,
        shape="flat" if variant == "flat" else "tree",
        size=VARIANT_SIZE,
        strategy=strategy,
        fullness=fullness,
    )
    benchmark(one_request(scheduler))


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
    benchmark.extra_info.update(case="floor")
    assert benchmark(take)
