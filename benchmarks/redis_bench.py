"""What sharing limits through Redis costs per request, next to the alternatives.

Usage (from the repository root, with the ``test`` extra installed, which brings ``redis``)::

    python benchmarks/redis_bench.py                 # starts its own redis-server
    python benchmarks/redis_bench.py --url redis://127.0.0.1:6379/0 --rounds 9

Each case does, per request, what a router does: one acquire and one release. For
ratetree that is ``acquire(group, tokens=100)`` then ``release(80)`` (the release settles
the real token count); for ``limits`` it is one ``MovingWindowRateLimiter.hit`` on its
``RedisStorage`` (it has no release). All cases run in the same process, one after another,
against the same server, with limits large enough never to refuse:

- in-memory: the default Scheduler, no I/O, for scale;
- Redis, 1 deployment: the path's only shared gate is the deployment (rpm + tpm);
- Redis, limited group: a group with rpm, tpm and max_parallel_requests over 10
  deployments with rpm + tpm, so every commit checks and takes on two gates;
- limits moving window: one hit per request, one round trip;
- PING: one bare round trip per request, the floor for anything that asks Redis.

Reported: requests per second and microseconds per request (median over ``--rounds``
rounds; a round runs each case for ``--seconds``), and round trips per request counted
by ``RedisStats`` over 1,000 requests.

A second table (``benchmarks/redis_async_bench.py``; ``--only async`` or ``--only sync``
runs one) has 1, 8 and 64 concurrent asyncio callers on one event loop: ratetree with
``AsyncRedisState``, with ``RedisState`` called from the loop, and ``limits``' asyncio
moving window, with round trips counted by the server and the event loop's lag.
The markdown tables go to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import limits
import redis
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from ratetree import Deployment, Group, Limits, Member, RedisState, Scheduler, TreeSpec

AMPLE = Limits(rpm=10**9, tpm=10**12)


def _spec(deployments: int, group: Limits) -> TreeSpec:
    ds = [Deployment(f"d{i}", limits=AMPLE) for i in range(deployments)]
    return TreeSpec(
        groups=[Group("g", members=[Member(deployment=d.id) for d in ds], limits=group)],
        deployments=ds,
    )


ONE = _spec(1, Limits())
LIMITED = _spec(10, Limits(rpm=10**9, tpm=10**12, max_parallel_requests=10**6))


def _scheduler_case(scheduler: Scheduler) -> Callable[[], None]:
    def one() -> None:
        scheduler.acquire("g", tokens=100).release(80)

    return one


def _time(case: Callable[[], object], seconds: float) -> float:
    """Requests per second of ``case`` over about ``seconds``."""
    n = 0
    start = time.perf_counter()
    end = start + seconds
    while True:
        for _ in range(100):
            case()
        n += 100
        now = time.perf_counter()
        if now >= end:
            return n / (now - start)


def run(url: str, seconds: float, rounds: int) -> list[tuple[str, float, str]]:
    """Each case's median requests per second and its round trips per request. Rounds
    visit every case in turn, so a busy neighbour slows all cases alike."""
    client = redis.Redis.from_url(url)
    cases: list[tuple[str, Callable[[], object], str]] = [
        ("ratetree in-memory (limited group)", _scheduler_case(Scheduler(LIMITED)), "0")
    ]
    for label, spec in (("1 deployment", ONE), ("limited group", LIMITED)):
        state = RedisState(client, prefix=f"bench-{uuid.uuid4().hex}")
        redis_case = _scheduler_case(Scheduler(spec, state=state))
        for _ in range(1000):  # also the warm-up: connection made, scripts loaded
            redis_case()
        trips = f"{state.stats.round_trips / 1000:g}"
        cases.append((f"ratetree + Redis ({label})", redis_case, trips))

    limiter = MovingWindowRateLimiter(RedisStorage(url))
    item = limits.parse("10000000/minute")
    key = uuid.uuid4().hex

    def hit() -> None:
        limiter.hit(item, "bench", key)

    cases.append(("limits MovingWindowRateLimiter.hit (RedisStorage)", hit, "1"))
    cases.append(("redis PING (one bare round trip)", client.ping, "1"))
    for _, case, _ in cases:
        for _ in range(200):
            case()
    rates: list[list[float]] = [[] for _ in cases]
    for _ in range(rounds):
        for i, (_, case, _) in enumerate(cases):
            rates[i].append(_time(case, seconds))
    return [
        (label, statistics.median(r), trips)
        for (label, _, trips), r in zip(cases, rates, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="use this Redis instead of starting a redis-server")
    parser.add_argument("--seconds", type=float, default=1.0, help="length of one case in a round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", choices=("sync", "async"), help="run one of the two tables")
    args = parser.parse_args(argv)
    server = None
    url = args.url
    # The test helpers: redis_server (a throwaway server), loop_lag (the probe).
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from redis_async_bench import run_async

    if url is None:
        from redis_server import RedisServer

        server = RedisServer(Path(tempfile.mkdtemp(prefix="ratetree-bench-")))
        server.start()
        url = server.url
    try:
        rows = [] if args.only == "async" else run(url, args.seconds, args.rounds)
        table = [] if args.only == "sync" else run_async(url, LIMITED, args.seconds, args.rounds)
    finally:
        if server is not None:
            server.kill()
    if rows:
        print("| backend (one acquire + release per request) | requests/s | µs/request", end="")
        print(" | round trips |\n|---|---:|---:|---:|")
        for label, rate, trips in rows:
            print(f"| {label} | {rate:,.0f} | {1e6 / rate:.1f} | {trips} |")
    print("\n".join(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
