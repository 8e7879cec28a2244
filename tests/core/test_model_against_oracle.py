"""The scheduler against the brute-force oracle: the state machine of ``oracle_machine.py``
(what it checks is described there), and the oracle's own rules on small cases."""

from __future__ import annotations

import pytest
from hypothesis import settings

from oracle import INF, Oracle, OracleBucket
from oracle_machine import SchedulerVsOracle
from ratetree import Deployment, Group, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock
from strategies import DeploymentModel, GroupModel, LimitsModel, MemberModel, RateModel, TreeModel

# Each example is a whole run of up to 50 steps; 4x the profile's examples keeps the CI
# run (derandomized) at about 20 s while reaching deep states.
SchedulerVsOracle.TestCase.settings = settings(
    settings.default,
    max_examples=4 * settings().max_examples,  # settings(): the loaded profile's
    stateful_step_count=50,
)
TestSchedulerAgreesWithOracle = SchedulerVsOracle.TestCase


# --------------------------------------------------------------------------- the oracle


def test_oracle_bucket_refills_continuously_and_caps_at_capacity() -> None:
    b = OracleBucket("rpm", 3, 60, start=0.0)
    b.take(1, 0.0)
    b.take(1, 0.0)
    b.take(1, 0.0)
    assert b.level(0.0) == 0
    assert b.level(10.0) == pytest.approx(0.5)
    assert b.wait(1, 10.0) == pytest.approx(10.0)
    assert b.level(1000.0) == 3
    assert b.wait(4, 1000.0) == INF


def test_oracle_tpm_bucket_in_debt_blocks_even_zero_tokens() -> None:
    b = OracleBucket("tpm", 100, 10, start=0.0)
    b.charge(150, 0.0)
    assert not b.fits(0, 0.0)
    assert b.wait(0, 0.0) == pytest.approx(5.0)
    b.refund(1000, 1.0)
    assert b.level(1.0) == 100


def test_oracle_retry_after_is_min_over_paths_of_slowest_gate() -> None:
    rpm1 = LimitsModel(rpm=(RateModel(1, 10),), rpm_raw="1/10 seconds")
    tree = TreeModel(
        groups=(
            GroupModel(
                "g0",
                (
                    MemberModel("d0", "deployment", None, None, None, LimitsModel()),
                    MemberModel("d1", "deployment", None, None, None, LimitsModel()),
                ),
                "shuffle",
                LimitsModel(),
            ),
        ),
        deployments=(
            DeploymentModel("d0", rpm1, None),
            DeploymentModel("d1", LimitsModel(max_parallel=1), None),
        ),
    )
    oracle = Oracle(tree, start=0.0, allowed_fails=3, cooldown_time=5.0)
    oracle.commit(("g0", "d0"), 0, 0.0)
    oracle.commit(("g0", "d1"), 0, 0.0)
    assert oracle.admissible_paths("g0", 0, 2.0) == []
    assert oracle.retry_after("g0", 0, 2.0) == pytest.approx(8.0)
    oracle.commit(("g0", "d0"), 0, 10.0)
    assert oracle.retry_after("g0", 0, 10.0) == pytest.approx(10.0)
    oracle.settle(("g0", "d1"), 0, None, 12.0)
    assert oracle.retry_after("g0", 0, 12.0) == 0.0


# --------------------------------------------------------------------------- edge cases


def _one_deployment(limits: Limits = Limits()) -> TreeSpec:  # noqa: B008
    return TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")])],
        deployments=[Deployment("d", limits=limits)],
    )


def test_a_failure_exactly_sixty_seconds_old_no_longer_counts() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(), clock=clock, allowed_fails=1, cooldown_time=5.0)
    s.acquire("g").fail()
    clock.advance(60.0)
    s.acquire("g").fail()  # the first failure has just left the window: 1 of 1 allowed
    assert s.try_acquire("g") is not None


def test_failures_within_sixty_seconds_beyond_allowed_fails_start_a_cooldown() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(), clock=clock, allowed_fails=1, cooldown_time=5.0)
    s.acquire("g").fail()
    clock.advance(59.5)
    s.acquire("g").fail()
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(5.0)


def test_a_tpm_bucket_in_debt_refuses_a_zero_token_request_until_repaid() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(Limits(tpm="100/10 seconds")), clock=clock)
    s.acquire("g", tokens=100).release(tokens=150)  # level -50: 5 s to climb back to 0
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(5.0)
    clock.advance(5.0)
    assert s.try_acquire("g") is not None


def test_a_shorter_retry_after_does_not_shorten_a_cooldown_in_force() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(), clock=clock)
    first, second = s.acquire("g"), s.acquire("g")
    first.fail(30.0)
    clock.advance(1.0)
    second.fail(2.0)
    assert s.snapshot().deployments["d"].cooling_for == pytest.approx(29.0)


# --------------------------------------------------------------------------- explain


def test_explain_lists_no_candidates_when_the_requested_group_is_full() -> None:
    spec = TreeSpec(
        groups=[
            Group("g", members=[Member(deployment="d")], limits=Limits(max_parallel_requests=1))
        ],
        deployments=[Deployment("d")],
    )
    s = Scheduler(spec, clock=FakeClock())
    s.acquire("g")
    explained = s.explain("g")
    assert s.try_acquire("g") is None
    assert not explained.admits
    assert explained.candidates == ()  # acquire could choose nothing


def test_explain_lists_no_candidates_for_more_tokens_than_the_group_can_hold() -> None:
    spec = TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")], limits=Limits(tpm=10))],
        deployments=[Deployment("d")],
    )
    s = Scheduler(spec, clock=FakeClock())
    explained = s.explain("g", 11)
    assert not explained.admits
    assert explained.candidates == ()
