"""The whole core-semantics state machine of ``test_model_against_oracle`` run against the
Redis backend: every commit, release, failure and refusal goes through the scripts, with
the scheduler's FakeClock sent as the time so the shared state must equal the oracle's."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from hypothesis import settings
from hypothesis.stateful import run_state_machine_as_test

from oracle_machine import SchedulerVsOracle
from ratetree import RedisState, Scheduler, TreeSpec


class RedisSchedulerVsOracle(SchedulerVsOracle):
    def __init__(self, client: redis.Redis) -> None:
        super().__init__()
        self.client = client

    def make_scheduler(self, spec: TreeSpec, **options: Any) -> Scheduler:
        # A fresh prefix per example: each run starts from empty shared state. The oracle
        # knows no lease TTL, and runs advance the clock by hours: leases must not expire.
        state = RedisState(
            self.client, prefix=uuid.uuid4().hex, clock=options["clock"], lease_ttl=1e12
        )
        return Scheduler(spec, state=state, **options)


def test_redis_backend_agrees_with_the_oracle_step_by_step(redis_client: redis.Redis) -> None:
    class OnThisServer(RedisSchedulerVsOracle):
        def __init__(self) -> None:
            super().__init__(redis_client)

    run_state_machine_as_test(
        OnThisServer,
        settings=settings(settings.default, stateful_step_count=50),
    )
