"""The Redis backend's semantics with several replicas sharing one prefix.

Replicas here are schedulers in one process with their own views, sharing the server and
one FakeClock (sent to the scripts as the time), so every answer is exact. A fresh replica's
view is optimistic: whatever another replica took, only Redis knows, so these tests check
that Redis is the authority.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import redis

from examples import block, readme_model_list
from ratetree import (
    ConfigError,
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


def _spec(group: Limits = Limits(), *deployments: Deployment) -> TreeSpec:  # noqa: B008
    deployments = deployments or (Deployment("d"),)
    members = [Member(deployment=d.id, order=i) for i, d in enumerate(deployments)]
    return TreeSpec(groups=[Group("g", members=members, limits=group)], deployments=deployments)


def _replicas(
    client: redis.Redis,
    spec: TreeSpec,
    clock: FakeClock,
    n: int = 2,
    lease_ttl: float = 600.0,
) -> list[Scheduler]:
    prefix = uuid.uuid4().hex
    return [
        Scheduler(
            spec,
            clock=clock,
            state=RedisState(client, prefix=prefix, clock=clock, lease_ttl=lease_ttl),
        )
        for _ in range(n)
    ]


def _retry_after(scheduler: Scheduler, tokens: float = 0) -> float | None:
    with pytest.raises(NoCapacity) as info:
        scheduler.acquire("g", tokens=tokens)
    return info.value.retry_after


LIMITS = {
    "rpm": (Limits(rpm=Rate(2, 10.0)), 0, 5.0),
    "tpm": (Limits(tpm=Rate(100, 10.0)), 50, 5.0),
    "max_parallel_requests": (Limits(max_parallel_requests=2), 0, None),
}


@pytest.mark.parametrize("kind", sorted(LIMITS))
def test_what_one_replica_took_refuses_another_with_the_same_retry_after(
    redis_client: redis.Redis, kind: str
) -> None:
    limits, tokens, expected = LIMITS[kind]
    clock = FakeClock(1000.0)
    a, b = _replicas(redis_client, _spec(limits), clock)
    a.acquire("g", tokens=tokens)
    a.acquire("g", tokens=tokens)
    assert _retry_after(a, tokens) == expected
    assert _retry_after(b, tokens) == expected  # b never saw a's leases: Redis refused
    assert redis_state_of(b).stats.refused >= 1


def test_a_refused_commit_refreshes_the_view_and_selects_the_next_deployment(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(0.0)
    one = Limits(rpm=Rate(1, 60.0))
    a, b = _replicas(
        redis_client, _spec(Limits(), Deployment("d1", one), Deployment("d2", one)), clock
    )
    assert a.acquire("g").deployment_id == "d1"
    assert b.acquire("g").deployment_id == "d2"  # d1 first, refused by Redis, then d2
    assert (redis_state_of(b).stats.refused, redis_state_of(b).stats.round_trips) == (1, 2)


def test_a_release_on_one_replica_frees_the_slot_for_another_after_the_sync_interval(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(0.0)
    a, b = _replicas(redis_client, _spec(Limits(max_parallel_requests=1)), clock)
    lease = a.acquire("g")
    assert _retry_after(b) is None
    lease.release()
    # b's view still counts a's lease until it re-reads the group, at most every 0.1 s.
    clock.advance(0.1)
    assert b.acquire("g").deployment_id == "d"
    assert redis_state_of(b).stats.syncs >= 1


def test_settled_tokens_are_shared_charges_and_refunds(redis_client: redis.Redis) -> None:
    clock = FakeClock(0.0)
    a, b = _replicas(redis_client, _spec(Limits(tpm=Rate(100, 60.0))), clock)
    a.acquire("g", tokens=50).release(tokens=80)  # 20 left
    # 30 tokens need 10 more: 10 * 0.6 s refill
    assert _retry_after(b, 30) == pytest.approx(6.0, abs=1e-9)
    a.acquire("g", tokens=10).release(tokens=0)  # refunds all 10
    assert _retry_after(b, 30) == pytest.approx(6.0, abs=1e-9)
    clock.advance(6.0)
    assert b.acquire("g", tokens=30).tokens == 30


def test_a_cooldown_started_on_one_replica_holds_on_every_replica(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(0.0)
    a, b = _replicas(redis_client, _spec(), clock)
    a.acquire("g").fail(retry_after=30.0)
    assert _retry_after(b) == 30.0
    clock.advance(30.0)
    assert b.acquire("g").deployment_id == "d"


def test_failures_on_different_replicas_count_together_under_allowed_fails(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    a, b = (
        Scheduler(
            _spec(),
            clock=clock,
            allowed_fails=1,
            cooldown_time=5.0,
            state=RedisState(redis_client, prefix=prefix, clock=clock),
        )
        for _ in range(2)
    )
    a.acquire("g").fail()
    b.acquire("g").fail()  # the second failure within a minute: a cooldown for all
    assert _retry_after(a) == 5.0


def test_the_server_clock_is_the_time_so_skewed_replica_clocks_agree(
    redis_client: redis.Redis,
) -> None:
    prefix = uuid.uuid4().hex
    spec = _spec(Limits(rpm=Rate(1, 60.0)))
    a = Scheduler(spec, clock=FakeClock(0.0), state=RedisState(redis_client, prefix=prefix))
    b = Scheduler(spec, clock=FakeClock(1e6), state=RedisState(redis_client, prefix=prefix))
    a.acquire("g")
    retry_after = _retry_after(b)
    # The server's clock moved on by the time b asked: a little less than a minute.
    assert retry_after is not None and 50.0 < retry_after <= 60.0


def test_leases_of_a_replica_that_never_releases_expire_after_the_lease_ttl(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(0.0)
    a, b = _replicas(redis_client, _spec(Limits(max_parallel_requests=1)), clock, lease_ttl=30.0)
    a.acquire("g")  # a dies holding it
    clock.advance(29.9)
    assert _retry_after(b) is None
    clock.advance(0.1)
    assert b.acquire("g").deployment_id == "d"


def test_a_state_serves_one_scheduler(redis_client: redis.Redis) -> None:
    state = RedisState(redis_client, prefix="one")
    Scheduler(_spec(), state=state)
    with pytest.raises(ConfigError, match="already serves"):
        Scheduler(_spec(), state=state)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("prefix", ""),
        ("prefix", "a{b}"),
        ("on_unavailable", "maybe"),
        ("lease_ttl", 0),
        ("lease_ttl", float("inf")),
        ("retries", -1),
        ("max_pending", 1.5),
        ("sync_interval", "0.1"),
        ("backoff", -1),
        ("max_backoff", float("nan")),
        ("jitter", 1.0),
        ("flush_interval", 0),
    ],
)
def test_invalid_options_raise_config_error_naming_them(option: str, value: object) -> None:
    with pytest.raises(ConfigError, match=option):
        RedisState("redis://127.0.0.1:1/0", **{option: value})  # type: ignore[arg-type]


def test_the_readme_redis_example_runs(redis_server: RedisServer) -> None:
    code = block("Shared limits across replicas (Redis)", "python")
    namespace: dict[str, object] = {"model_list": readme_model_list()}
    exec(code.replace("redis://localhost:6379/0", redis_server.url), namespace)
    scheduler = namespace["scheduler"]
    assert isinstance(scheduler, Scheduler)
    lease = scheduler.acquire("fast")
    assert lease.path[0] == "fast"
    lease.release()


def test_threads_sharing_one_redis_scheduler_never_exceed_the_cap_and_release_every_slot(
    redis_client: redis.Redis,
) -> None:
    prefix = uuid.uuid4().hex
    spec = _spec(Limits(max_parallel_requests=2))
    scheduler = Scheduler(spec, state=RedisState(redis_client, prefix=prefix))
    held: list[int] = []
    peak: list[int] = []
    guard = threading.Lock()

    def work() -> None:
        for _ in range(200):
            lease = scheduler.try_acquire("g")
            if lease is None:
                continue
            with guard:
                held.append(1)
                peak.append(len(held))
            with guard:
                held.pop()
            lease.release()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak and max(peak) <= 2
    assert redis_client.zcard(f"ratetree:{{{prefix}}}:b:g:g") == 0
    assert scheduler.snapshot().groups["g"].in_flight == 0


def test_a_reconfigured_replica_keeps_sharing_state_and_settles_older_leases(
    redis_client: redis.Redis,
) -> None:
    clock = FakeClock(1000.0)
    limits = Limits(rpm=Rate(2, 10.0), max_parallel_requests=3)
    a, b = _replicas(redis_client, _spec(limits), clock)
    before = a.acquire("g")
    # The same group and deployment with a second deployment added: both gates keep their id.
    a.reconfigure(_spec(limits, Deployment("d"), Deployment("e")))
    a.acquire("g")
    # a's view and Redis agree that the group took two of its two requests.
    assert _retry_after(a) == 5.0
    assert _retry_after(b) == 5.0
    before.release()  # granted on the old tree, settled on the kept keys
    state = redis_state_of(a)
    assert state.pending == 0
    in_flight = [
        redis_client.zcard(key)
        for key in redis_client.scan_iter(f"ratetree:*{state.prefix}*")
        if redis_client.type(key) in (b"zset", "zset")
    ]
    assert sum(in_flight) == 1  # the lease granted after the reconfiguration


def test_waiting_is_refused_on_a_shared_state_with_a_reason(redis_client: redis.Redis) -> None:
    (a,) = _replicas(redis_client, _spec(), FakeClock(), n=1)
    with pytest.raises(ConfigError, match="acquire_wait is not available"):
        a.acquire_wait("g")
