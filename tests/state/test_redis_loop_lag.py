"""An event loop that acquires through ``AsyncRedisState`` is never blocked, neither while
200 concurrent acquires go through Redis nor while Redis hangs (SIGSTOP).

A probe task sleeps PROBE seconds again and again and records how late it wakes: a loop
blocked by a round trip (a synchronous client waits up to its timeout while Redis hangs)
wakes it late by as much. Issue 11 demands the bound: a median under 5 ms. The median of
hundreds of samples is what a blocked loop moves and a busy neighbour does not.
"""

from __future__ import annotations

import asyncio
import signal
import statistics
import sys
import uuid
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

import pytest

import redis_server as redis_server_module
from ratetree import (
    AsyncRedisState,
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    Rate,
    Scheduler,
    StateUnavailable,
    TreeSpec,
)
from redis_server import RedisServer

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX only")

PICKS = 200
PROBE = 0.001  # seconds the probe sleeps between wake-ups
HOLD = 0.1  # seconds a pick holds its lease, as a (very fast) LLM call would
BOUND = 0.005  # the median lateness issue 11 allows
SPEC = TreeSpec(
    groups=[
        Group(
            "g",
            members=[Member(deployment=d) for d in ("a", "b", "c")],
            limits=Limits(rpm=Rate(10**6, 60.0), max_parallel_requests=10 * PICKS),
        )
    ],
    deployments=[Deployment(d) for d in ("a", "b", "c")],
)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path)


async def _probe(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + PROBE
        await asyncio.sleep(PROBE)
        lags.append(loop.time() - due)


async def _lags_while(work: Awaitable[Any]) -> list[float]:
    """How late the probe woke while ``work`` ran."""
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.ensure_future(_probe(lags, stop))
    await work
    stop.set()
    await probe
    return lags


async def _pick(scheduler: Scheduler, rounds: int) -> int:
    """Acquire, hold a moment, release, ``rounds`` times; how many were admitted."""
    admitted = 0
    for _ in range(rounds):
        try:
            lease = await scheduler.aacquire("g", tokens=10)
        except NoCapacity:  # StateUnavailable included
            await asyncio.sleep(PROBE)
            continue
        admitted += 1
        await asyncio.sleep(HOLD)
        lease.release(tokens=5)
    return admitted


def test_the_loop_is_not_blocked_by_200_concurrent_acquires_or_a_hung_redis(
    own_server: RedisServer,
) -> None:
    state = AsyncRedisState(own_server.url, prefix=uuid.uuid4().hex, timeout=0.25)
    scheduler = Scheduler(SPEC, state=state)
    process = own_server.process
    assert process is not None

    async def run() -> tuple[list[float], list[float], list[int]]:
        await _pick(scheduler, 1)  # connected, scripts loaded
        picks = asyncio.gather(*(_pick(scheduler, 3) for _ in range(PICKS)))
        healthy = await _lags_while(picks)
        admitted = picks.result()
        process.send_signal(signal.SIGSTOP)
        try:
            hung = await _lags_while(asyncio.gather(*(_pick(scheduler, 2) for _ in range(PICKS))))
        finally:
            process.send_signal(signal.SIGCONT)
        await scheduler.aclose()
        return healthy, hung, admitted

    healthy, hung, admitted = asyncio.run(run())

    assert sum(admitted) == 3 * PICKS  # the picks went through Redis
    assert state.stats.unavailable > 0  # and the hang was seen
    assert len(healthy) >= 50 and len(hung) >= 100
    assert statistics.median(healthy) < BOUND, sorted(healthy)[-5:]
    assert statistics.median(hung) < BOUND, sorted(hung)[-5:]
    assert state.pending == 0  # what the hang held back was delivered after it


def test_fail_closed_refusals_during_a_hang_are_state_unavailable(
    own_server: RedisServer,
) -> None:
    state = AsyncRedisState(own_server.url, prefix=uuid.uuid4().hex, timeout=0.1)
    scheduler = Scheduler(SPEC, state=state)
    process = own_server.process
    assert process is not None

    async def run() -> list[BaseException | object]:
        await _pick(scheduler, 1)
        process.send_signal(signal.SIGSTOP)
        try:
            return await asyncio.gather(
                *(scheduler.aacquire("g") for _ in range(20)), return_exceptions=True
            )
        finally:
            process.send_signal(signal.SIGCONT)

    results = asyncio.run(run())
    assert all(isinstance(r, StateUnavailable) for r in results), results
