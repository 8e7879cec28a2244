"""The circuit breaker and the idle delivery of queued releases, on a real redis-server
hung with SIGSTOP or killed and restarted.

The breaker's clock is the state's FakeClock, so the open interval lasts exactly until the
test advances it: every call made meanwhile is counted at the client. How fast the answers
come is measured in ``benchmarks/redis_breaker.py``, not asserted here.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
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
from ratetree.core.leases import Lease
from ratetree.state.redis import BACKLOG
from ratetree.testing import FakeClock
from redis_counting import counting_client
from redis_server import RedisServer

CAP = 4
THREADS = 8
CALLS = 20
SPEC = TreeSpec(
    groups=[
        Group(
            "g",
            members=[Member(deployment="d")],
            limits=Limits(rpm=Rate(10_000, 60.0), max_parallel_requests=CAP),
        )
    ],
    deployments=[Deployment("d")],
)
# Long enough to pass for certain if the test fails; a passing test never waits for it.
LIMIT = 30.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path, persist=True)


def _in_flight(server: RedisServer, prefix: str) -> int:
    count: int = redis.Redis.from_url(server.url).zcard(f"ratetree:{{{prefix}}}:b:g:g")
    return count


def eventually(predicate: Callable[[], bool]) -> bool:
    """Whether ``predicate`` comes true within LIMIT seconds (checked every 10 ms)."""
    done = threading.Event()
    for _ in range(int(LIMIT / 0.01)):
        if predicate():
            return True
        done.wait(0.01)
    return predicate()


def _hammer(scheduler: Scheduler, calls: int) -> list[list[object]]:
    """THREADS threads each acquire ``calls`` times at once, releasing what they get; each
    thread's answers (a Lease, or the NoCapacity raised)."""
    answers: list[list[object]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def work(mine: list[object]) -> None:
        start.wait()
        for _ in range(calls):
            try:
                lease = scheduler.acquire("g")
            except NoCapacity as refused:
                mine.append(refused)
            else:
                mine.append(lease)
                lease.release()

    threads = [threading.Thread(target=work, args=(a,), daemon=True) for a in answers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LIMIT)
    assert not any(t.is_alive() for t in threads), "a thread is still waiting for Redis"
    return answers


@pytest.mark.parametrize("mode", ["closed", "open"])
def test_a_hung_redis_is_asked_once_per_interval_and_every_thread_gets_its_answers(
    server: RedisServer, mode: str
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    client = counting_client(server.url, 0.2)
    state = RedisState(client, prefix=prefix, clock=clock, on_unavailable=mode)
    scheduler = Scheduler(SPEC, clock=clock, state=state)
    scheduler.acquire("g").release()
    server.pause()
    before = client.sent
    answers = _hammer(scheduler, CALLS)
    # One call found the server hung; the breaker answered all the others without Redis.
    assert client.sent - before == 1
    assert all(len(mine) == CALLS for mine in answers)
    got = [a for mine in answers for a in mine]
    if mode == "closed":  # refused; or by the view, at its cap with commits on their way
        assert all(isinstance(a, NoCapacity) for a in got)
        assert any(isinstance(a, StateUnavailable) for a in got)
    else:  # admitted from the local view, which still holds the group's cap
        assert sum(isinstance(a, Lease) for a in got) >= CALLS
        assert all(isinstance(a, Lease) or type(a) is NoCapacity for a in got)
    assert state.breaker.skipped > 0
    # The interval is over: exactly one of the next calls probes the still hung server.
    clock.advance(state.breaker.max_backoff)
    before = client.sent
    _hammer(scheduler, 3)
    assert client.sent - before == 1
    server.resume()
    clock.advance(state.breaker.max_backoff)
    # Nothing over-admitted after SIGCONT: the shared cap holds whatever the hung commits
    # did once the server ran them.
    held = []
    while (lease := scheduler.try_acquire("g")) is not None:
        held.append(lease)
        assert len(held) <= CAP
    assert len(held) == CAP and _in_flight(server, prefix) == CAP
    for lease in held:
        lease.release()
    # Queued releases leave the queue when a trip takes them, before it runs: wait for
    # Redis to have them.
    assert eventually(lambda: state.pending == 0 and _in_flight(server, prefix) == 0)
    state.close()


def test_an_idle_replica_delivers_every_queued_release_after_an_outage(
    server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    state = RedisState(server.url, prefix=prefix, clock=clock, flush_interval=0.02)
    scheduler = Scheduler(SPEC, clock=clock, state=state)
    leases = [scheduler.acquire("g") for _ in range(CAP)]
    assert _in_flight(server, prefix) == CAP
    server.kill()
    for lease in leases:
        lease.release()
    assert state.pending == CAP
    server.start()
    clock.advance(state.breaker.max_backoff)  # the breaker lets the next try through
    # No further traffic: the background delivery alone empties the queue.
    # Queued releases leave the queue when a trip takes them, before it runs: wait for
    # Redis to have them, and for the trip's reply to be counted.
    assert eventually(lambda: state.pending == 0 and _in_flight(server, prefix) == 0)
    assert eventually(lambda: state.stats.redelivered == CAP)
    state.close()


def test_the_breaker_closing_delivers_the_whole_backlog_not_only_one_operations_share(
    server: RedisServer,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    unlimited = TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")])],
        deployments=[Deployment("d", limits=Limits(max_parallel_requests=10_000))],
    )
    # No periodic delivery: only the breaker closing can start it.
    state = RedisState(server.url, prefix=prefix, clock=clock, flush_interval=3600)
    scheduler = Scheduler(unlimited, clock=clock, state=state)
    leases = [scheduler.acquire("g") for _ in range(BACKLOG + 6)]
    server.kill()
    for lease in leases:
        lease.release()
    server.start()
    clock.advance(state.breaker.max_backoff)
    scheduler.acquire("g").release()  # delivers BACKLOG first, and closes the breaker
    # Queued releases leave the queue when a trip takes them, before it runs: wait for
    # Redis to have them, and for the trip's reply to be counted.
    client = redis.Redis.from_url(server.url)
    key = f"ratetree:{{{prefix}}}:b:d:d"
    assert eventually(lambda: state.pending == 0 and client.zcard(key) == 0)
    assert eventually(lambda: state.stats.redelivered == BACKLOG + 6)
    state.close()
