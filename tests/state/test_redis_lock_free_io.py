"""No Redis command is ever sent while the scheduler's lock is held.

The client is a real ``redis.Redis`` subclass that, before every command, has another
thread take the scheduler's lock (through ``Scheduler.snapshot``) and checks it got it:
with the lock held by the sending thread, the probe could not finish.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

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
    TreeSpec,
)
from ratetree.testing import FakeClock
from redis_server import RedisServer, redis_state_of

# How long the probe may take to get the lock; only reached when the test fails.
PROBE_LIMIT = 10.0


class LockProbingRedis(redis.Redis):
    """Checks, before each command, that its scheduler's lock is free."""

    scheduler: Scheduler | None = None
    commands = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        scheduler = self.scheduler
        if scheduler is not None:
            self.commands += 1
            probe = threading.Thread(target=scheduler.snapshot, daemon=True)
            probe.start()
            probe.join(PROBE_LIMIT)
            assert not probe.is_alive(), f"{args[0]!r} sent under the scheduler's lock"
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def _spec(*ids: str) -> TreeSpec:
    limits = Limits(rpm=Rate(2, 60.0), max_parallel_requests=1)
    return TreeSpec(
        groups=[Group("g", members=[Member(deployment=d, order=i) for i, d in enumerate(ids)])],
        deployments=[Deployment(d, limits=limits) for d in ids],
    )


def _replica(server: RedisServer, prefix: str, clock: FakeClock) -> tuple[Scheduler, Any]:
    client = LockProbingRedis(connection_pool=redis.ConnectionPool.from_url(server.url))
    state = RedisState(client, prefix=prefix, clock=clock, sync_interval=0.0)
    scheduler = Scheduler(_spec("d1", "d2"), clock=clock, state=state)
    client.scheduler = scheduler
    return scheduler, client


def test_every_redis_command_is_sent_with_the_scheduler_lock_free(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(1000.0)
    prefix = uuid.uuid4().hex
    a, a_client = _replica(redis_server, prefix, clock)
    b, b_client = _replica(redis_server, prefix, clock)
    held = a.acquire("g")  # a commit
    other = b.acquire("g")  # b's view offers d1 first: Redis refuses, then d2
    assert (held.deployment_id, other.deployment_id) == ("d1", "d2")
    assert redis_state_of(b).stats.refused == 1
    with pytest.raises(NoCapacity):
        a.acquire("g")  # the view refuses: a read of the shared state, then NoCapacity
    assert redis_state_of(a).stats.syncs == 1
    held.release()  # a settle
    other.fail(retry_after=5.0)  # a failure
    a.reconfigure(_spec("d1", "d2", "d3"))
    a.acquire("g").release()
    assert redis_state_of(a).flush() == 0
    assert a_client.commands >= 6 and b_client.commands >= 3
