"""``Lease.renew`` on a real redis-server with a short lease TTL: a renewed lease keeps its
slot past the TTL, an unrenewed one is reaped."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from ratetree import (
    AsyncRedisState,
    Deployment,
    Group,
    InvalidRequest,
    Limits,
    Member,
    RedisState,
    Scheduler,
    TreeSpec,
)
from ratetree.testing import FakeClock
from redis_server import RedisServer

TTL = 10.0
SPEC = TreeSpec(
    groups=[Group("g", members=[Member(deployment="d")], limits=Limits(max_parallel_requests=2))],
    deployments=[Deployment("d")],
)


def _replicas(server: RedisServer, clock: FakeClock, prefix: str) -> list[Scheduler]:
    return [
        Scheduler(
            SPEC,
            clock=clock,
            state=RedisState(server.url, prefix=prefix, clock=clock, lease_ttl=TTL),
        )
        for _ in range(2)
    ]


def test_a_renewed_lease_outlives_the_ttl_and_an_unrenewed_one_is_reaped(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    a, b = _replicas(redis_server, clock, prefix)
    renewed, forgotten = a.acquire("g"), a.acquire("g")
    in_flight = f"ratetree:{{{prefix}}}:b:g:g"
    client = redis.Redis.from_url(redis_server.url)
    clock.advance(TTL - 1)
    renewed.renew()  # now 9: good until 19
    clock.advance(5)  # now 14: the other lease expired at 10
    assert b.try_acquire("g") is not None  # the reaped slot
    assert b.try_acquire("g") is None  # the renewed lease still holds the other one
    assert client.zcard(in_flight) == 2
    clock.advance(4)
    renewed.renew(30.0)  # now 18: good until 48, past the next default TTL
    clock.advance(25)
    assert b.try_acquire("g") is not None  # b's own lease expired at 24, not a's
    assert b.try_acquire("g") is None
    renewed.release()
    forgotten.release()  # long gone from Redis: releasing it changes nothing there
    assert client.zcard(in_flight) == 1


def test_renewing_never_shortens_nor_revives_and_settled_leases_are_left_alone(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    a, b = _replicas(redis_server, clock, prefix)
    lease = a.acquire("g")
    lease.renew(1.0)  # shorter than what it has: kept at 10
    clock.advance(5)
    assert [b.try_acquire("g") is None for _ in range(2)] == [False, True]
    clock.advance(6)  # now 11: expired
    lease.renew()  # not brought back
    assert b.try_acquire("g") is not None
    lease.release()
    lease.renew()  # released: nothing to do
    with pytest.raises(InvalidRequest, match="ttl"):
        lease.renew(0)  # checked even when there is nothing to renew


def test_renewing_while_redis_is_down_never_raises(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    import redis_server as redis_server_module

    servers = redis_server_module.running(tmp_path_factory.mktemp("renew"))
    server = next(servers)
    clock = FakeClock(0.0)
    state = RedisState(server.url, prefix="down", clock=clock, lease_ttl=TTL)
    lease = Scheduler(SPEC, clock=clock, state=state).acquire("g")
    server.kill()
    lease.renew()  # fail-closed, yet no StateUnavailable: the call goes on regardless
    assert state.stats.unavailable == 1
    next(servers, None)


def test_an_awaited_state_queues_the_renewal_and_sends_it_with_the_next_round_trip(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    state = AsyncRedisState(redis_server.url, prefix=prefix, clock=clock, lease_ttl=TTL)
    a = Scheduler(SPEC, clock=clock, state=state)
    b = _replicas(redis_server, clock, prefix)[0]

    async def run() -> None:
        renewed, forgotten = await a.aacquire("g"), await a.aacquire("g")
        clock.advance(TTL - 1)
        renewed.renew()  # queued: never blocks the loop; sent with the next round trip
        assert await state.aflush() == 0
        clock.advance(5)  # the unrenewed lease expired at 10; the renewed one holds to 19
        assert b.try_acquire("g") is not None
        assert b.try_acquire("g") is None
        renewed.release()
        forgotten.release()
        await a.aclose()

    asyncio.run(run())
