"""What the Redis backend does when its server dies mid-run and comes back.

Each test runs its own server (so killing it disturbs no other test); the restart test
keeps an append-only file synced on every write, so a killed server comes back with its
data, as a production Redis with persistence or a replica failover would.
"""

from __future__ import annotations

import logging
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

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
from ratetree.state.redis import BACKLOG
from ratetree.testing import FakeClock
from redis_server import RedisServer, redis_state_of

SPEC = TreeSpec(
    groups=[
        Group(
            "g",
            members=[Member(deployment="d")],
            limits=Limits(rpm=Rate(2, 60.0), max_parallel_requests=1),
        )
    ],
    deployments=[Deployment("d")],
)

UNLIMITED = TreeSpec(
    groups=[Group("g", members=[Member(deployment="d")])], deployments=[Deployment("d")]
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path, persist=True)


def _scheduler(
    server: RedisServer,
    clock: FakeClock,
    prefix: str,
    on_unavailable: str = "closed",
    unavailable_retry_after: float = 1.0,
) -> Scheduler:
    state = RedisState(
        server.url,
        prefix=prefix,
        clock=clock,
        on_unavailable=on_unavailable,
        unavailable_retry_after=unavailable_retry_after,
        # No circuit breaker and no delivery in the background: these tests look at each
        # call (test_redis_breaker.py tests both).
        backoff=0,
        flush_interval=3600,
    )
    return Scheduler(SPEC, clock=clock, state=state)


def test_failing_closed_refuses_with_state_unavailable_caused_by_the_client_error(
    server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    s = _scheduler(server, clock, "closed", unavailable_retry_after=2.5)
    s.acquire("g").release()
    server.kill()
    with pytest.raises(StateUnavailable) as info:
        s.acquire("g")
    assert isinstance(info.value, NoCapacity)
    assert info.value.retry_after == 2.5
    assert isinstance(info.value.__cause__, redis.ConnectionError)
    assert "shared state unavailable for group 'g'" in str(info.value)
    assert redis_state_of(s).stats.unavailable == 1


def test_failing_open_admits_from_the_local_view_and_warns_once_per_outage(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(0.0)
    s = _scheduler(server, clock, "open", on_unavailable="open")
    s.acquire("g").release()  # one of the two requests a minute, seen by the local view
    server.kill()
    with caplog.at_level(logging.WARNING, logger="ratetree.redis"):
        lease = s.acquire("g")  # admitted by the local buckets alone
        lease.release()
        with pytest.raises(NoCapacity) as info:  # the local rpm bucket is empty now
            s.acquire("g")
    assert not isinstance(info.value, StateUnavailable)
    assert info.value.retry_after == pytest.approx(30.0)
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1
    # Leases admitted while failing open never touch Redis; what waits is a release for the
    # commit the outage cut short, which may have taken a slot before the server died.
    assert redis_state_of(s).pending == 1


def test_a_release_redis_missed_is_queued_and_delivered_on_the_next_round_trip(
    server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    a = _scheduler(server, clock, prefix)
    b = _scheduler(server, clock, prefix)
    lease = a.acquire("g")
    server.kill()
    lease.release()  # no exception: queued
    assert (redis_state_of(a).pending, redis_state_of(a).stats.queued) == (1, 1)
    server.start()  # the same port, its data back from the append-only file
    clock.advance(1.0)
    with pytest.raises(NoCapacity) as held:
        b.acquire("g")  # Redis still holds a's slot: the release has not arrived
    assert held.value.retry_after is None  # the in-flight cap, not the rpm bucket
    assert a.acquire("g").deployment_id == "d"  # delivers the release, then takes the slot
    assert (redis_state_of(a).pending, redis_state_of(a).stats.redelivered) == (0, 1)


def test_flush_delivers_queued_releases_and_reports_what_still_waits(server: RedisServer) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    s = _scheduler(server, clock, prefix)
    in_flight = f"ratetree:{{{prefix}}}:b:g:g"  # the group's in-flight set
    lease = s.acquire("g")
    assert redis.Redis.from_url(server.url).zcard(in_flight) == 1
    server.kill()
    lease.release()
    assert redis_state_of(s).flush() == 1  # still down
    server.start()
    assert redis_state_of(s).flush() == 0
    assert redis.Redis.from_url(server.url).zcard(in_flight) == 0


def test_a_failure_delivered_late_cools_down_only_for_what_is_left(server: RedisServer) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    a = _scheduler(server, clock, prefix)
    b = _scheduler(server, clock, prefix)
    lease = a.acquire("g")
    server.kill()
    lease.fail(retry_after=30.0)
    server.start()
    clock.advance(10.0)
    assert redis_state_of(a).flush() == 0
    with pytest.raises(NoCapacity) as info:
        b.acquire("g")
    assert info.value.retry_after == pytest.approx(20.0)


def test_a_full_queue_drops_the_oldest_release_and_logs_it(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(0.0)
    spec_free = Scheduler(
        UNLIMITED,
        clock=clock,
        state=RedisState(server.url, prefix="full", clock=clock, max_pending=1, backoff=0),
    )
    leases = [spec_free.acquire("g"), spec_free.acquire("g")]
    server.kill()
    with caplog.at_level(logging.ERROR, logger="ratetree.redis"):
        for lease in leases:
            lease.release()
    assert (redis_state_of(spec_free).pending, redis_state_of(spec_free).stats.dropped) == (1, 1)
    assert any("dropped an undelivered release" in r.getMessage() for r in caplog.records)


def test_an_operation_delivers_a_bounded_backlog_first_and_flush_delivers_the_rest(
    server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    s = Scheduler(
        UNLIMITED,
        clock=clock,
        state=RedisState(
            server.url, prefix=uuid.uuid4().hex, clock=clock, backoff=0, flush_interval=3600
        ),
    )
    leases = [s.acquire("g") for _ in range(BACKLOG + 6)]
    server.kill()
    for lease in leases:
        lease.release()
    server.start()
    assert redis_state_of(s).pending == BACKLOG + 6
    lease = s.acquire("g")
    assert redis_state_of(s).pending == 6
    assert redis_state_of(s).flush() == 0
    assert redis_state_of(s).stats.redelivered == BACKLOG + 6
    lease.release()
    assert redis_state_of(s).pending == 0


def test_state_unavailable_survives_pickling_with_its_reason() -> None:
    exc = StateUnavailable("g", 1.5, "Error 111 connecting")
    copy = pickle.loads(pickle.dumps(exc))
    assert isinstance(copy, StateUnavailable)
    assert (copy.group, copy.retry_after, copy.reason, str(copy)) == (
        "g",
        1.5,
        "Error 111 connecting",
        "shared state unavailable for group 'g': Error 111 connecting",
    )
