"""The asyncio Redis backend (``AsyncRedisState``) on a real redis-server: caps hold across
schedulers under concurrent awaited acquires, every release is delivered (counted), the
fail modes and fork safety are RedisState's, and concurrent acquires share round trips."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

import redis_server as redis_server_module
from ratetree import (
    AsyncRedisState,
    ConfigError,
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

CAP = 5
RPM = 120
SPEC = TreeSpec(
    groups=[
        Group(
            "g",
            members=[Member(deployment="a"), Member(deployment="b")],
            limits=Limits(rpm=Rate(RPM, 60.0), max_parallel_requests=CAP),
        )
    ],
    deployments=[Deployment("a"), Deployment("b")],
)


def _capped(cap: int) -> TreeSpec:
    limits = Limits(max_parallel_requests=cap)
    return TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")], limits=limits)],
        deployments=[Deployment("d")],
    )


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path, persist=True)


def _state(url: str, prefix: str, **options: object) -> AsyncRedisState:
    return AsyncRedisState(url, prefix=prefix, **options)  # type: ignore[arg-type]


def _state_of(scheduler: Scheduler) -> AsyncRedisState:
    state = scheduler.state
    assert isinstance(state, AsyncRedisState)
    return state


def _settles(state: AsyncRedisState, admitted: int) -> int:
    """Release scripts Redis ran: every script but the commits, refusals and reads."""
    stats = state.stats
    return stats.round_trips - admitted - stats.refused - stats.syncs


def test_200_concurrent_acquires_on_two_schedulers_never_exceed_the_caps(
    redis_server: RedisServer,
) -> None:
    prefix = uuid.uuid4().hex
    schedulers = [Scheduler(SPEC, state=_state(redis_server.url, prefix)) for _ in range(2)]
    rng = random.Random(7)
    held = 0
    most = 0
    admitted = [0, 0]

    async def pick(i: int) -> None:
        nonlocal held, most
        for _ in range(3):
            try:
                lease = await schedulers[i].aacquire("g", tokens=10)
            except NoCapacity:
                await asyncio.sleep(rng.random() / 1000)
                continue
            admitted[i] += 1
            held += 1
            most = max(most, held)
            await asyncio.sleep(rng.random() / 1000)
            held -= 1
            lease.release(tokens=5)

    async def run() -> None:
        await asyncio.gather(*(pick(rng.randrange(2)) for _ in range(200)))
        for s in schedulers:
            await s.aclose()

    asyncio.run(run())
    assert most <= CAP
    assert 0 < sum(admitted) <= RPM
    for s, n in zip(schedulers, admitted, strict=True):
        state = _state_of(s)
        assert state.pending == 0
        assert _settles(state, n) == n  # every release delivered, once
        assert state.stats.queued == 0
    client = redis.Redis.from_url(redis_server.url)
    assert client.zcard(f"ratetree:{{{prefix}}}:b:g:g") == 0
    assert state.pipelines < state.stats.round_trips  # scripts shared round trips


def test_a_request_after_a_release_carries_it_one_round_trip_per_request(
    redis_server: RedisServer,
) -> None:
    state = _state(redis_server.url, uuid.uuid4().hex, release_delay=60.0)
    s = Scheduler(SPEC, state=state)

    async def run() -> None:
        (await s.aacquire("g")).release()  # the first one also loads the scripts
        before = state.pipelines
        for _ in range(50):
            (await s.aacquire("g")).release()
        assert state.pipelines - before == 50  # each release rode on the next acquire
        assert state.pending == 1
        await s.aclose()

    asyncio.run(run())
    assert state.pending == 0
    assert _settles(state, 51) == 51


def test_a_release_waits_at_most_release_delay_for_a_round_trip(
    redis_server: RedisServer,
) -> None:
    state = _state(redis_server.url, uuid.uuid4().hex, release_delay=0.0)
    s = Scheduler(SPEC, state=state)

    async def run() -> None:
        lease = await s.aacquire("g")
        lease.release()
        while state.pending:  # sent alone by the sender's timer
            await asyncio.sleep(0.001)

    asyncio.run(run())
    assert _settles(state, 1) == 1


def test_releases_from_other_threads_are_delivered(redis_server: RedisServer) -> None:
    state = _state(redis_server.url, uuid.uuid4().hex, release_delay=0.0)
    s = Scheduler(SPEC, state=state)

    async def run() -> None:
        leases = [await s.aacquire("g") for _ in range(CAP)]
        await asyncio.gather(*(asyncio.to_thread(lease.release) for lease in leases))
        while state.pending:
            await asyncio.sleep(0.001)
        await s.aacquire("g")

    asyncio.run(run())
    assert _settles(state, CAP + 1) == CAP


def test_a_cancelled_acquire_takes_nothing(redis_server: RedisServer) -> None:
    spec = TreeSpec(
        groups=[
            Group("g", members=[Member(deployment="a")], limits=Limits(max_parallel_requests=1))
        ],
        deployments=[Deployment("a")],
    )
    state = _state(redis_server.url, uuid.uuid4().hex)
    s = Scheduler(spec, state=state)

    async def run() -> None:
        task = asyncio.ensure_future(s.aacquire("g"))
        await asyncio.sleep(0)  # the commit is on its way
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await s.aclose()  # the commit lands, and is released
        (await s.aacquire("g")).release()  # the one slot is free again
        await s.aclose()

    asyncio.run(run())
    assert s.snapshot().groups["g"].in_flight == 0


def test_sync_acquire_on_an_awaited_state_is_a_config_error(redis_server: RedisServer) -> None:
    s = Scheduler(SPEC, state=_state(redis_server.url, uuid.uuid4().hex))
    with pytest.raises(ConfigError, match="aacquire"):
        s.acquire("g")
    with pytest.raises(ConfigError, match="aacquire"):
        s.acquire_wait("g")
    assert s.snapshot().groups["g"].in_flight == 0  # the refused acquire took nothing


def test_aacquire_on_other_states_is_acquire(redis_server: RedisServer) -> None:
    blocking = Scheduler(SPEC, state=RedisState(redis_server.url, prefix=uuid.uuid4().hex))
    local = Scheduler(SPEC)

    async def run() -> None:
        for s in (blocking, local):
            (await s.aacquire("g", tokens=3)).release()
            await s.aclose()

    asyncio.run(run())


def test_bad_values_are_config_errors() -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigError, match="release_delay"):
        AsyncRedisState("redis://127.0.0.1:1/0", release_delay=-1.0)
    with pytest.raises(ConfigError, match="prefix"):
        AsyncRedisState("redis://127.0.0.1:1/0", prefix="{x}")
    with pytest.raises(ConfigError, match="URL") as raised:
        AsyncRedisState("http://user:secret@host/0")
    assert "secret" not in str(raised.value)


# -- Redis away ---------------------------------------------------------------------------


def test_failing_closed_refuses_and_failing_open_admits_then_every_release_is_delivered(
    own_server: RedisServer,
) -> None:
    clock = FakeClock(1000.0)
    closed = _state(own_server.url, "p", clock=clock, timeout=0.5)
    opened = _state(own_server.url, "p", clock=clock, timeout=0.5, on_unavailable="open")
    a = Scheduler(SPEC, clock=clock, state=closed)
    b = Scheduler(SPEC, clock=clock, state=opened)

    async def run() -> None:
        held = [await a.aacquire("g"), await b.aacquire("g")]
        own_server.kill()
        with pytest.raises(StateUnavailable) as refused:
            await a.aacquire("g")
        assert isinstance(refused.value.__cause__, redis.exceptions.RedisError)
        local = await b.aacquire("g")  # fails open: the view alone admits
        for lease in held:
            lease.release()
        local.release()  # never counted in Redis: nothing to deliver
        # The refused (or locally admitted) commit may have run: a release for it waits too.
        assert await closed.aflush() == 2 and await opened.aflush() == 2
        # The breaker holds calls back for its interval (on the scheduler's clock): the
        # next acquire is answered from the fail mode without asking Redis.
        assert closed.breaker.open and opened.breaker.open
        skipped = closed.breaker.skipped
        with pytest.raises(StateUnavailable):
            await a.aacquire("g")
        assert closed.breaker.skipped == skipped + 1
        own_server.start()
        # An explicit flush tries whatever the breaker says, and closes it.
        assert await closed.aflush() == 0 and await opened.aflush() == 0
        assert not closed.breaker.open and not opened.breaker.open
        await a.aclose()
        await b.aclose()

    asyncio.run(run())
    for state in (closed, opened):
        assert state.stats.queued == state.stats.redelivered == 2
    client = redis.Redis.from_url(own_server.url)
    assert client.zcard("ratetree:{p}:b:g:g") == 0


def test_a_clock_that_raises_reaches_the_caller_and_takes_nothing(
    redis_server: RedisServer,
) -> None:
    clock = FakeClock(1000.0)
    broken = False

    def state_clock() -> float:
        if broken:
            raise RuntimeError("clock broke")
        return clock()

    state = _state(redis_server.url, uuid.uuid4().hex, clock=state_clock)
    s = Scheduler(_capped(1), clock=clock, state=state)

    async def run() -> None:
        nonlocal broken
        (await s.aacquire("g")).release()
        broken = True
        with pytest.raises(RuntimeError, match="clock broke"):
            await s.aacquire("g")
        broken = False
        (await s.aacquire("g")).release()  # the slot the failed call took is back
        await s.aclose()

    asyncio.run(run())
    assert state.pending == 0
