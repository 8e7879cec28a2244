"""How the Redis server's own settings show in ratetree: a restart without persistence
loses every key (the buckets start full again, in-flight slots are forgotten), and a full
server under ``maxmemory-policy noeviction`` loses nothing: it refuses a script before
its first write (ratetree reports Redis unavailable) or lets it finish. docs/redis.md
states both; these tests are where they come from."""

from __future__ import annotations

import pytest
import redis

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

# Two requests a minute, one at a time: both limits are visible after one restart.
SPEC = TreeSpec(
    groups=[Group("g", members=[Member(deployment="d")])],
    deployments=[Deployment("d", Limits(rpm=Rate(2, 60.0), max_parallel_requests=1))],
)


def test_a_restart_without_persistence_refills_the_buckets_and_forgets_slots_in_flight(
    volatile_server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    state = RedisState(volatile_server.url, prefix="volatile", clock=clock)
    scheduler = Scheduler(SPEC, clock=clock, state=state)
    scheduler.acquire("g").release()
    held = scheduler.acquire("g")  # the second request of the minute, still in flight
    with pytest.raises(NoCapacity):
        scheduler.acquire("g")

    volatile_server.kill()
    volatile_server.start()
    state.flush()

    # The same minute: the rpm bucket is full again and the held slot is not counted, so
    # two more requests pass, the first of them beside the lease from before the restart.
    clock.advance(1.0)  # past sync_interval: a refused view re-reads Redis
    beside = scheduler.acquire("g")
    held.release()  # a lease from before the restart settles without error
    beside.release()
    scheduler.acquire("g").release()
    with pytest.raises(NoCapacity):
        scheduler.acquire("g")


def test_a_full_server_under_noeviction_refuses_a_script_whole_or_runs_it_whole(
    volatile_server: RedisServer,
) -> None:
    client = redis.Redis.from_url(volatile_server.url)
    client.config_set("maxmemory-policy", "noeviction")
    client.config_set("maxmemory", 1)  # one byte: the server is always over its limit
    client.close()
    # Redis denies a script at its first write that may grow memory: here the first
    # write, so nothing was written and ratetree reports Redis as unavailable.
    rpm_only = TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")])],
        deployments=[Deployment("d", Limits(rpm=Rate(2, 60.0)))],
    )
    scheduler = Scheduler(rpm_only, state=RedisState(volatile_server.url, prefix="full"))
    with pytest.raises(StateUnavailable) as refused:
        scheduler.acquire("g")
    assert isinstance(refused.value.__cause__, redis.exceptions.OutOfMemoryError)
    # A capped gate's script first drops expired slots (a write that frees memory); once
    # a script has written, Redis lets it finish, so the acquire runs whole.
    capped = Scheduler(SPEC, state=RedisState(volatile_server.url, prefix="full-capped"))
    capped.acquire("g").release()
