"""Lease ids stay unique across forked processes: workers forked from one scheduler (as a
pre-forking server does) share its limits without their leases colliding in Redis, with
``RedisState`` and with ``AsyncRedisState`` (each worker on an event loop of its own)."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest

from ratetree import (
    AsyncRedisState,
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    RedisState,
    Scheduler,
    TreeSpec,
)
from ratetree.testing import FakeClock
from redis_server import RedisServer

WORKERS = 3

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX only")


def _in_workers(target: Callable[..., None], *args: object) -> list[Any]:
    """Fork WORKERS processes running ``target(results, *args)``, each sending one result
    down ``results``; their results, once all have exited cleanly."""
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    workers = [fork.Process(target=target, args=(send, *args)) for _ in range(WORKERS)]
    for w in workers:
        w.start()
    results = [receive.recv() for _ in range(WORKERS)]
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * WORKERS
    return results


async def _take(scheduler: Scheduler) -> bool:
    try:
        await scheduler.aacquire("g")  # acquire, on a scheduler without an awaited state
    except NoCapacity:
        return False
    return True


def _hold(results: Connection, scheduler: Scheduler, everyone: Barrier) -> None:
    """In a forked worker: try to take a slot, report, and hold it until all have tried."""
    results.send(asyncio.run(_take(scheduler)))
    everyone.wait(60)


@pytest.mark.parametrize("awaited", [False, True], ids=["RedisState", "AsyncRedisState"])
def test_forked_workers_share_the_cap_without_colliding_lease_ids(
    redis_server: RedisServer, awaited: bool
) -> None:
    spec = TreeSpec(
        groups=[
            Group(
                "g",
                members=[Member(deployment="d")],
                limits=Limits(max_parallel_requests=2),
            )
        ],
        deployments=[Deployment("d")],
    )
    clock = FakeClock(1000.0)
    prefix = uuid.uuid4().hex
    state = (AsyncRedisState if awaited else RedisState)(
        redis_server.url, prefix=prefix, clock=clock
    )
    scheduler = Scheduler(spec, clock=clock, state=state)

    async def warm() -> None:  # the parent names a lease (and connects) before it forks
        (await scheduler.aacquire("g")).release()
        await scheduler.aclose()

    asyncio.run(warm())
    everyone = multiprocessing.get_context("fork").Barrier(WORKERS)
    admitted = _in_workers(_hold, scheduler, everyone)
    assert sorted(admitted) == [False, True, True]


def _draw(results: Connection, state: RedisState | AsyncRedisState) -> None:
    """In a forked worker: the back-off its breaker would wait after three failures."""
    results.send(state.breaker.interval(3))


@pytest.mark.parametrize("awaited", [False, True], ids=["RedisState", "AsyncRedisState"])
def test_forked_workers_draw_their_own_breaker_jitter(awaited: bool) -> None:
    # Workers forked from one replica that lose Redis together must not probe it together:
    # each draws its own jitter (the default source is the OS's, which a fork does not copy).
    state = (AsyncRedisState if awaited else RedisState)("redis://127.0.0.1:1", check=False)
    drawn = _in_workers(_draw, state)
    assert len(set(drawn)) == WORKERS, drawn
    assert all(0.0 < d <= state.breaker.max_backoff for d in drawn)
