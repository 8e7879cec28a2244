"""Three replicas with their own views share one Redis, against one oracle of the shared
state: whichever replica a request reaches, however stale its view, what it admits the
oracle admits too. Refusals are not checked here: a stale view may refuse until it syncs
(``test_redis_state`` covers that); admissions are the safety property.
"""

from __future__ import annotations

import random
import uuid

import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from oracle import Oracle, window_overruns
from ratetree import Lease, NoCapacity, RedisState, Scheduler
from ratetree.testing import FakeClock
from strategies import TreeModel, tree_models

REPLICAS = 3


class ReplicasVsOracle(RuleBasedStateMachine):
    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        self.client = client
        self.open: list[tuple[Lease, tuple[str, ...], float]] = []

    @initialize(model=tree_models(), seed=st.integers(0, 2**32 - 1))
    def build(self, model: TreeModel, seed: int) -> None:
        self.model = model
        self.clock = FakeClock(1000.0)
        prefix = uuid.uuid4().hex
        self.replicas = [
            Scheduler(
                model.to_spec(),
                clock=self.clock,
                rng=random.Random(seed + i),
                state=RedisState(self.client, prefix=prefix, clock=self.clock, lease_ttl=1e12),
            )
            for i in range(REPLICAS)
        ]
        self.oracle = Oracle(model, start=1000.0, allowed_fails=3, cooldown_time=5.0)

    def ready(self) -> bool:
        return hasattr(self, "oracle")

    @precondition(ready)
    @rule(
        data=st.data(),
        replica=st.integers(0, REPLICAS - 1),
        tokens=st.sampled_from([0.0, 0.0, 1.0, 30.0, 100.0]),
        n=st.integers(1, 6),
    )
    def acquire(self, data: st.DataObject, replica: int, tokens: float, n: int) -> None:
        name = data.draw(st.sampled_from(self.model.request_names), label="group")
        group = self.model.resolve(name)
        if tokens > self.oracle.max_tokens(group):
            return
        t = self.clock()
        for _ in range(n):
            try:
                lease = self.replicas[replica].acquire(name, tokens=tokens)
            except NoCapacity:
                return
            path = (group, *lease.path[1:])
            admissible = self.oracle.admissible_paths(group, tokens, t)
            assert path in admissible, f"replica {replica} took {path}; only {admissible} admit"
            self.oracle.commit(path, tokens, t)
            self.open.append((lease, path, tokens))

    @precondition(lambda self: self.open)
    @rule(data=st.data(), actual=st.none() | st.sampled_from([0.0, 10.0, 150.0]))
    def release(self, data: st.DataObject, actual: float | None) -> None:
        lease, path, tokens = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        lease.release(actual)
        self.oracle.settle(path, tokens, actual, self.clock())

    @precondition(lambda self: self.open)
    @rule(data=st.data(), retry_after=st.none() | st.sampled_from([0.5, 10.0]))
    def fail(self, data: st.DataObject, retry_after: float | None) -> None:
        lease, path, tokens = self.open.pop(data.draw(st.integers(0, len(self.open) - 1)))
        lease.fail(retry_after)
        self.oracle.fail(path, tokens, retry_after, 0.0, self.clock())

    @precondition(ready)
    @rule(seconds=st.sampled_from([0.05, 0.1, 1.0, 5.0, 30.0, 61.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @precondition(ready)
    @invariant()
    def no_gate_exceeds_its_limits(self) -> None:
        for key, gate in self.oracle.gates.items():
            if gate.max_parallel is not None:
                assert gate.in_flight <= gate.max_parallel, key
        for gate, bucket in self.oracle.all_buckets():
            if bucket.kind == "rpm":
                assert not window_overruns(bucket), gate.key


def test_replicas_with_stale_views_admit_only_what_the_shared_state_admits(
    redis_client: redis.Redis,
) -> None:
    class OnThisServer(ReplicasVsOracle):
        def __init__(self) -> None:
            super().__init__(redis_client)

    run_state_machine_as_test(
        OnThisServer,
        settings=settings(settings.default, stateful_step_count=40),
    )
