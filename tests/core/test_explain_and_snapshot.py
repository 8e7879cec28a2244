"""explain() and snapshot() describe the state without changing it."""

from __future__ import annotations

import random

import attrs
import pytest

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.testing import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def scheduler(clock: FakeClock) -> Scheduler:
    spec = TreeSpec(
        groups=[
            Group(
                "gpt", [Member(deployment="cheap", order=1), Member(deployment="pricey", order=2)]
            ),
            Group("glm", [Member(deployment="z", limits=Limits(max_parallel_requests=1))]),
            Group("fast", [Member(group="gpt"), Member(group="glm")], limits=Limits(tpm=10_000)),
        ],
        deployments=[
            Deployment("cheap", Limits(rpm=1)),
            Deployment("pricey", Limits(rpm=10)),
            Deployment("z", Limits(rpm=10)),
        ],
    )
    return Scheduler(spec, clock=clock, rng=random.Random(0))


def test_explain_consumes_nothing(scheduler: Scheduler) -> None:
    before = scheduler.snapshot()
    scheduler.explain("fast", tokens=100)
    assert scheduler.snapshot() == before


def test_explain_names_the_candidates_and_why_others_are_passed_over(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    scheduler.acquire("gpt")  # empties "cheap"
    held = scheduler.acquire("glm")  # fills z's reference
    text = scheduler.explain("fast")
    assert text.candidates == ("pricey",)
    rendered = str(text)
    assert "cheap order=1 weight=1 - blocked (rpm 1/60s short for 60 s)" in rendered
    assert "pricey order=2 weight=10 - candidate" in rendered
    assert "concurrency full (1/1)" in rendered
    held.release()
    assert set(scheduler.explain("fast").candidates) == {"pricey", "z"}


def test_explain_reports_a_later_tier_as_not_reached_while_an_earlier_one_admits(
    scheduler: Scheduler,
) -> None:
    gpt = scheduler.explain("gpt")
    roles = {child.name: child.role for child in gpt.children}
    assert roles == {"cheap": "candidate", "pricey": "not reached"}


def test_explain_shows_a_token_count_no_bucket_can_hold(scheduler: Scheduler) -> None:
    text = str(scheduler.explain("fast", tokens=20_000))
    assert "tpm 10000/60s can never hold 20000" in text


def test_snapshot_reports_remaining_in_flight_and_cooldown(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    lease = scheduler.acquire("fast", tokens=1000)
    snap = scheduler.snapshot()
    assert snap.groups["fast"].buckets[0].remaining == pytest.approx(9000)
    assert snap.groups["fast"].in_flight == 1
    assert snap.deployments[lease.deployment_id].in_flight == 1
    lease.fail(retry_after=4)
    clock.advance(1)
    snap = scheduler.snapshot()
    assert snap.deployments[lease.deployment_id].cooling_for == pytest.approx(3)
    assert snap.deployments[lease.deployment_id].in_flight == 0
    assert [r.name for r in snap.references] == ["glm -> z"]  # the one with limits


def test_snapshots_are_frozen(scheduler: Scheduler) -> None:
    snap = scheduler.snapshot()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snap.groups["fast"].in_flight = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.groups["x"] = snap.groups["fast"]  # type: ignore[index]


def test_explain_names_no_candidate_when_the_requested_group_itself_is_full(
    scheduler: Scheduler,
) -> None:
    text = scheduler.explain("fast", tokens=10_001)
    assert not text.admits
    assert text.candidates == ()
    assert {child.role for child in text.children} == {"not reached"}
