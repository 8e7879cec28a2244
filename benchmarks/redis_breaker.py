"""How fast answers come while Redis hangs, with and without the circuit breaker.

Usage (from the repository root, with the ``test`` extra installed)::

    python benchmarks/redis_breaker.py              # starts its own redis-server
    python benchmarks/redis_breaker.py --seconds 5

For each fail mode (``closed``: refusals; ``open``: local admissions) and with the breaker
on (the defaults: backoff 0.1 s doubling up to 5 s) or off (``backoff=0``): a scheduler on a
``RedisState`` made from the URL (1 s timeout) does one acquire and release, then the server
is hung with SIGSTOP and 8 threads acquire (and release what they get) in a loop for
``--seconds``. Reported per case: the answers the threads got, the median, 99th percentile
and longest time one took, and the commands sent to Redis meanwhile. The server is resumed
(SIGCONT) and restarted between cases. The markdown table goes to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from ratetree import Deployment, Group, Limits, Member, NoCapacity, RedisState, Scheduler, TreeSpec

THREADS = 8
SPEC = TreeSpec(
    groups=[
        Group(
            "g",
            members=[Member(deployment="d")],
            limits=Limits(rpm=10**9, max_parallel_requests=THREADS),
        )
    ],
    deployments=[Deployment("d")],
)


def case(server: Any, mode: str, breaker: bool, seconds: float) -> tuple[Any, ...]:
    """One row: mode, breaker, answers, median/p99/max ms, commands sent while hung."""
    from redis_counting import counting_client

    client = counting_client(server.url, 1.0)  # what RedisState makes of the URL
    options: dict[str, Any] = {} if breaker else {"backoff": 0}
    state = RedisState(client, prefix=uuid.uuid4().hex, on_unavailable=mode, **options)
    scheduler = Scheduler(SPEC, state=state)
    scheduler.acquire("g").release()
    times: list[list[float]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS + 1)
    end = time.monotonic() + seconds

    def work(mine: list[float]) -> None:
        start.wait()
        while time.monotonic() < end:
            began = time.perf_counter()
            try:
                lease = scheduler.acquire("g")
            except NoCapacity:
                pass
            else:
                lease.release()
            mine.append(time.perf_counter() - began)

    threads = [threading.Thread(target=work, args=(t,)) for t in times]
    for t in threads:
        t.start()
    server.pause()
    before = client.sent
    end = time.monotonic() + seconds
    start.wait()
    for t in threads:
        t.join()
    sent = client.sent - before
    server.resume()
    state.close()
    every = sorted(x for mine in times for x in mine)
    p99 = every[min(len(every) - 1, int(0.99 * len(every)))]
    ms = [1e3 * statistics.median(every), 1e3 * p99, 1e3 * every[-1]]
    return (mode, "on" if breaker else "off", len(every), *ms, sent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of the hang per case")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_server import RedisServer

    rows = []
    for mode in ("closed", "open"):
        for breaker in (True, False):
            server = RedisServer(Path(tempfile.mkdtemp(prefix="ratetree-breaker-")))
            server.start()
            try:
                rows.append(case(server, mode, breaker, args.seconds))
            finally:
                server.kill()
    print(f"{THREADS} threads, Redis hung (SIGSTOP) for {args.seconds:g} s per case")
    print()
    print("| on_unavailable | breaker | answers | median ms | p99 ms | max ms | commands sent |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for mode, on, n, median, p99, longest, sent in rows:
        print(f"| {mode} | {on} | {n:,} | {median:.3f} | {p99:.1f} | {longest:.0f} | {sent} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
