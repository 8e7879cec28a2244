"""``acquire("a")`` + ``release()`` beside 0 or 2,000 waiters on 20 other groups, timed
with a plain timer (the median of 7 runs of 200): the scenario of
``test_queued_release.py`` for commits whose queue is too slow to fill for
pytest-benchmark. Run it against another checkout with ``PYTHONPATH=<checkout>/src``::

    .venv/bin/python benchmarks/queued_release.py
"""

from __future__ import annotations

import asyncio
import statistics
import time

from test_queued_release import WAITERS, queue_waiters

ROUNDS = 200


def main() -> None:
    for waiters, groups in [(0, 0), (WAITERS, 20)]:
        s, loop, tasks = queue_waiters(waiters, groups)
        runs = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(ROUNDS):
                s.acquire("a").release()
            runs.append((time.perf_counter() - start) / ROUNDS * 1e6)
        print(f"{waiters} waiters on {groups} groups: median {statistics.median(runs):.2f} µs")
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()


if __name__ == "__main__":
    main()
