"""Redis from asyncio: concurrent callers on one event loop, per request, next to ``limits``.

Run by ``benchmarks/redis_bench.py`` (its second table). Each case runs ``callers`` tasks
on one event loop for ``seconds``; each task does, per request, what a router does:

- ratetree + AsyncRedisState: ``await aacquire(group, tokens=100)`` then ``release(80)``
  (the release is delivered with a later round trip, see docs/redis.md);
- ratetree + RedisState (synchronous client) from the loop: the same through
  ``aacquire``, which is ``acquire`` there, so each round trip blocks the loop;
- ``limits``: ``await MovingWindowRateLimiter.hit`` on its asyncio Redis storage
  (``async+redis://``, the redis-py implementation), one script per hit.

Meanwhile a probe task sleeps 1 ms again and again and records how late it wakes: the
loop lag. Round trips are counted by the server: its ``total_reads_processed`` (one per
read of a client socket, which takes up to 16 KB of commands) over the case, the INFO
call taken off; a batch larger than one read counts more than once. For AsyncRedisState
the batches it wrote are counted too (``pipelines``).
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable

import limits
import redis
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from loop_lag import lags_while  # tests/loop_lag.py (redis_bench.py puts tests/ on the path)
from ratetree import AsyncRedisState, RedisState, Scheduler, TreeSpec

CALLERS = (1, 8, 64)

Request = Callable[[], Awaitable[object]]


class Row:
    """One case's medians over the rounds."""

    def __init__(self, label: str, callers: int) -> None:
        self.label = label
        self.callers = callers
        self.us: list[float] = []
        self.trips: list[float] = []
        self.batches: list[float] = []
        self.lag_median: list[float] = []
        self.lag_p99: list[float] = []

    def cells(self) -> str:
        med = statistics.median
        return (
            f"| {self.label} | {self.callers} | {med(self.us):.1f} | {med(self.trips):.3f} "
            f"| {f'{med(self.batches):.3f}' if self.batches else '-'} "
            f"| {med(self.lag_median) * 1e3:.2f} | {med(self.lag_p99) * 1e3:.1f} |"
        )


def _reads(client: redis.Redis) -> int:
    return int(client.info("stats")["total_reads_processed"])


async def _case(request: Request, callers: int, seconds: float) -> tuple[int, float, list[float]]:
    """Requests done, seconds taken and the probe's lags while ``callers`` tasks repeat
    ``request`` for about ``seconds``."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    done = 0

    async def caller() -> None:
        nonlocal done
        while loop.time() < end:
            await request()
            done += 1

    start = time.perf_counter()
    lags = await lags_while(lambda: asyncio.gather(*(caller() for _ in range(callers))))
    taken = time.perf_counter() - start
    return done, taken, lags


def _acquire_release(scheduler: Scheduler) -> Request:
    async def one() -> None:
        (await scheduler.aacquire("g", tokens=100)).release(80)

    return one


async def _rounds(url: str, spec: TreeSpec, seconds: float, rounds: int) -> list[Row]:
    client = redis.Redis.from_url(url)
    state = AsyncRedisState(url, prefix=f"bench-{uuid.uuid4().hex}")
    awaited = Scheduler(spec, state=state)
    blocking = Scheduler(spec, state=RedisState(url, prefix=f"bench-{uuid.uuid4().hex}"))
    limiter = MovingWindowRateLimiter(RedisStorage(f"async+{url}", implementation="redispy"))
    item = limits.parse("10000000/minute")
    key = uuid.uuid4().hex

    async def hit() -> None:
        await limiter.hit(item, "bench", key)

    cases: list[tuple[str, Request, Callable[[], Awaitable[object]] | None]] = [
        ("ratetree + AsyncRedisState", _acquire_release(awaited), awaited.aclose),
        ("ratetree + RedisState (sync client)", _acquire_release(blocking), None),
        ("limits moving window (async+redis)", hit, None),
    ]
    rows = [Row(label, n) for label, _, _ in cases for n in CALLERS]
    for _, request, _ in cases:  # warm-up: connections made, scripts loaded
        for _ in range(200):
            await request()
    await awaited.aclose()
    for _ in range(rounds):
        at = 0
        for _, request, finish in cases:
            for callers in CALLERS:
                before = _reads(client)
                sent = state.pipelines
                done, taken, lags = await _case(request, callers, seconds)
                if finish is not None:
                    await finish()  # the last releases are part of the cost
                trips = _reads(client) - before - 1  # the second INFO is read too
                row = rows[at]
                row.us.append(taken / done * 1e6)
                row.trips.append(trips / done)
                if finish is not None:
                    row.batches.append((state.pipelines - sent) / done)
                row.lag_median.append(statistics.median(lags) if lags else taken)
                lags.sort()
                row.lag_p99.append(lags[int(len(lags) * 0.99)] if lags else taken)
                at += 1
    client.close()
    return rows


def run_async(url: str, spec: TreeSpec, seconds: float, rounds: int) -> list[str]:
    """The markdown table: one row per backend and number of concurrent callers."""
    rows = asyncio.run(_rounds(url, spec, seconds, rounds))
    return [
        "| asyncio, one process (acquire + release per request) | callers | µs/request "
        "| round trips/request (server reads) | batches written/request "
        "| loop lag median (ms) | loop lag p99 (ms) |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(row.cells() for row in rows),
    ]
