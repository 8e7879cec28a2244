"""Bytes per deployment of a scheduler, measured with tracemalloc; prints JSON.

Usage: ``python benchmarks/memory.py [size]`` (run by ``benchmarks/run.py`` in a process of
its own, so nothing else is traced). For each strategy: the three-level tree of ``size``
deployments (10,000 by default) is built, given one request per deployment of traffic
(acquire + release with token counts, and 100 leases left open at the end), and
garbage-collected. Two numbers: the scheduler alone (the frozen ``TreeSpec`` built before
tracing starts, as a router would hold its config anyway), and spec plus scheduler.
"""

from __future__ import annotations

import gc
import json
import random
import sys
import tracemalloc

from ratetree import Scheduler
from ratetree.testing import FakeClock
from trees import ROOT, STRATEGIES, Strategy, three_level_spec

OPEN_AT_END = 100


def traffic(scheduler: Scheduler, requests: int) -> list[object]:
    for _ in range(requests - OPEN_AT_END):
        scheduler.acquire(ROOT, tokens=100).release(80)
    return [scheduler.acquire(ROOT, tokens=100) for _ in range(OPEN_AT_END)]


def traced_bytes(size: int, strategy: Strategy, *, with_spec: bool) -> int:
    """Bytes still allocated after building and using one scheduler."""
    spec = None if with_spec else three_level_spec(size, strategy)
    gc.collect()
    tracemalloc.start()
    try:
        if spec is None:
            spec = three_level_spec(size, strategy)
        scheduler = Scheduler(spec, clock=FakeClock(1000.0), rng=random.Random(0))
        leases = traffic(scheduler, size)
        gc.collect()
        current, _peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del scheduler, leases
    return current


def main(size: int) -> dict[str, object]:
    per_strategy = {
        s: {
            "scheduler": traced_bytes(size, s, with_spec=False) / size,
            "with_spec": traced_bytes(size, s, with_spec=True) / size,
        }
        for s in STRATEGIES
    }
    return {"size": size, "bytes_per_deployment": per_strategy}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000)))
