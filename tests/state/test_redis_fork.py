"""Lease ids stay unique across forked processes: workers forked from one scheduler (as a
pre-forking server does) share its limits without their leases colliding in Redis."""

from __future__ import annotations

import multiprocessing
import sys
import uuid
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Barrier

import pytest

from ratetree import Deployment, Group, Limits, Member, RedisState, Scheduler, TreeSpec
from ratetree.testing import FakeClock
from redis_server import RedisServer

WORKERS = 3

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX only")


def _hold(scheduler: Scheduler, results: Connection, everyone: Barrier) -> None:
    """In a forked worker: try to take a slot, report, and hold it until all have tried."""
    lease = scheduler.try_acquire("g")
    results.send(lease is not None)
    everyone.wait(60)


def test_forked_workers_share_the_cap_without_colliding_lease_ids(
    redis_server: RedisServer,
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
    state = RedisState(redis_server.url, prefix=uuid.uuid4().hex, clock=clock)
    scheduler = Scheduler(spec, clock=clock, state=state)
    scheduler.acquire("g").release()  # the parent has named a lease before it forks
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    everyone = fork.Barrier(WORKERS)
    workers = [fork.Process(target=_hold, args=(scheduler, send, everyone)) for _ in range(WORKERS)]
    for w in workers:
        w.start()
    admitted = [receive.recv() for _ in range(WORKERS)]
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0] * WORKERS
    assert sorted(admitted) == [False, True, True]
