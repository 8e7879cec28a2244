"""Real replicas: separate processes (spawned) sharing limits through one Redis server."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import redis

import redis_server as redis_server_module
from ratetree import (
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    Rate,
    RedisState,
    Scheduler,
    StateUnavailable,
    TreeSpec,
)
from ratetree.testing import FakeClock
from redis_server import RedisServer

WORKERS = 4
SECONDS = 3.0
RATE = Rate(20, 1.0)  # the tight group: 20 requests a second, bursts of 20
PARALLEL = 2


def _tight_spec(parallel: int = PARALLEL, rate: Rate = RATE) -> TreeSpec:
    deployments = [Deployment(f"d{i}") for i in range(3)]
    group = Group(
        "tight",
        members=[Member(deployment=d.id) for d in deployments],
        limits=Limits(rpm=(rate,), max_parallel_requests=parallel),
    )
    return TreeSpec(groups=[group], deployments=deployments)


def _hammer(url: str, prefix: str, barrier: Any, results: Any) -> None:
    """Acquire as fast as possible for SECONDS, holding up to two leases at once; report
    admissions, refusals, the moments each lease was surely held, and when the worker
    started and stopped acquiring."""
    client = redis.Redis.from_url(url)
    scheduler = Scheduler(_tight_spec(), state=RedisState(client, prefix=prefix))
    barrier.wait(timeout=120)
    began = time.monotonic()
    end = began + SECONDS
    admitted = refused = 0
    held: list[tuple[float, float]] = []
    while time.monotonic() < end:
        leases = []
        for _ in range(2):
            lease = scheduler.try_acquire("tight")
            if lease is None:
                refused += 1
                break
            admitted += 1
            client.incr(f"{prefix}:admitted")
            leases.append((lease, time.monotonic()))
        for lease, since in leases:
            held.append((since, time.monotonic()))  # within the real holding interval
            lease.release()
    results.put((admitted, refused, held, began, time.monotonic()))


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    best = current = 0
    for _, step in events:  # at equal moments an end (-1) sorts before a start
        current += step
        best = max(best, current)
    return best


def test_four_processes_never_admit_more_than_capacity_plus_rate_times_interval(
    redis_server: Any,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    prefix = uuid.uuid4().hex
    barrier = ctx.Barrier(WORKERS + 1)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=_hammer, args=(redis_server.url, prefix, barrier, results))
        for _ in range(WORKERS)
    ]
    for w in workers:
        w.start()
    barrier.wait(timeout=120)
    outcomes = [results.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert all(w.exitcode == 0 for w in workers)
    # Every admission lies between the earliest start and the latest stop: each worker
    # admits only after its own start, which is no earlier than the earliest.
    elapsed = max(o[4] for o in outcomes) - min(o[3] for o in outcomes)

    admitted = sum(o[0] for o in outcomes)
    counted = int(redis.Redis.from_url(redis_server.url).get(f"{prefix}:admitted") or 0)
    bound = RATE.amount + RATE.amount / RATE.period * elapsed
    assert counted == admitted
    assert admitted <= bound, f"{admitted} admitted in {elapsed:.2f} s, at most {bound:.1f}"
    # The limit was reached and contended for, so the bound was tested.
    assert admitted >= RATE.amount
    assert sum(o[1] for o in outcomes) > admitted
    assert all(o[0] > 0 for o in outcomes)
    # No moment had more leases surely held than the cap, across all processes.
    assert _max_overlap([i for o in outcomes for i in o[2]]) <= PARALLEL


def _die_holding_leases(url: str, prefix: str, start: float, done: Any) -> None:
    clock = FakeClock(start)
    state = RedisState(url, prefix=prefix, clock=clock, lease_ttl=30.0)
    scheduler = Scheduler(_tight_spec(), clock=clock, state=state)
    for _ in range(PARALLEL):
        scheduler.acquire("tight")
    done.put(True)
    # The process ends here with its leases open: nothing releases them.


def test_slots_of_a_replica_process_that_died_with_leases_open_free_after_the_lease_ttl(
    redis_server: Any,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    prefix = uuid.uuid4().hex
    done = ctx.Queue()
    replica = ctx.Process(target=_die_holding_leases, args=(redis_server.url, prefix, 500.0, done))
    replica.start()
    assert done.get(timeout=120)
    replica.join(timeout=60)
    assert replica.exitcode == 0

    clock = FakeClock(500.0)
    state = RedisState(redis_server.url, prefix=prefix, clock=clock)
    survivor = Scheduler(_tight_spec(), clock=clock, state=state)
    clock.advance(29.5)
    with pytest.raises(NoCapacity) as refused:
        survivor.acquire("tight")
    assert refused.value.retry_after is None  # only the in-flight cap holds it
    clock.advance(0.5)
    assert survivor.acquire("tight").deployment_id.startswith("d")


def _through_an_outage(url: str, prefix: str, events: Any, results: Any) -> None:
    """Acquire and release until Redis has gone away and come back, then 20 more; release
    a lease held from the start while Redis is down, so that release must be queued."""
    state = RedisState(url, prefix=prefix, timeout=5.0)
    scheduler = Scheduler(_tight_spec(parallel=10, rate=Rate(1000, 1.0)), state=state)
    held = None
    while held is None:  # the other workers compete for the same slots
        held = scheduler.try_acquire("tight")
    admitted = unavailable = after = 0
    give_up = time.monotonic() + 120
    while after < 20 and time.monotonic() < give_up:
        try:
            lease = scheduler.acquire("tight")
        except StateUnavailable:
            if not unavailable:
                held.release()  # Redis is down: queued
                events.put("down")
            unavailable += 1
            continue
        except NoCapacity:
            continue
        admitted += 1
        if admitted == 20:
            events.put("up")
        if unavailable:
            after += 1
        lease.release()
    state.flush()
    stats = state.stats
    results.put((admitted, unavailable, after, stats.queued, stats.redelivered, state.pending))


def test_replicas_fail_closed_through_a_redis_restart_and_deliver_every_queued_release(
    tmp_path: Path,
) -> None:
    redis_server_module.require()
    server = RedisServer(tmp_path, persist=True)
    server.start()
    try:
        ctx = multiprocessing.get_context("spawn")
        prefix = uuid.uuid4().hex
        events, results = ctx.Queue(), ctx.Queue()
        workers = [
            ctx.Process(target=_through_an_outage, args=(server.url, prefix, events, results))
            for _ in range(3)
        ]
        for w in workers:
            w.start()
        assert [events.get(timeout=120) for _ in workers] == ["up"] * 3  # all running
        server.kill()
        assert [events.get(timeout=120) for _ in workers] == ["down"] * 3  # all noticed
        server.start()
        outcomes = [results.get(timeout=120) for _ in workers]
        for w in workers:
            w.join(timeout=60)
        assert all(w.exitcode == 0 for w in workers)  # nothing escaped from the client
        for _, unavailable, after, queued, redelivered, pending in outcomes:
            assert unavailable > 0 and after == 20
            assert queued >= 1 and redelivered == queued and pending == 0
        in_flight = f"ratetree:{{{prefix}}}:b:g:tight"
        assert redis.Redis.from_url(server.url).zcard(in_flight) == 0  # every slot released
    finally:
        server.kill()
