"""Round-robin: the replayed period and the heaps make the same choices, and switching
between them (a member closes, then reopens) keeps the shares fair."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.core.strategies.round_robin import RoundRobinTier, wf2q_period
from ratetree.testing import FakeClock


def scheduler(
    weights: list[float],
    limits: list[Limits] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> Scheduler:
    limits = limits or [Limits()] * len(weights)
    deployments = [
        Deployment(f"d{i}", lim, weight=w)
        for i, (w, lim) in enumerate(zip(weights, limits, strict=True))
    ]
    spec = TreeSpec(
        [Group("g", [Member(deployment=d.id) for d in deployments], "round-robin")], deployments
    )
    return Scheduler(spec, rng=random.Random(0), clock=clock)


def picks(s: Scheduler, n: int) -> list[int]:
    return [int(s.acquire("g").deployment_id[1:]) for _ in range(n)]


@given(st.lists(st.integers(1, 12), min_size=1, max_size=8))
def test_a_period_gives_every_member_exactly_its_weight(weights: list[int]) -> None:
    period = wf2q_period(weights)
    assert Counter(period) == {i: w for i, w in enumerate(weights)}


@given(st.lists(st.integers(1, 12), min_size=1, max_size=8), st.integers(1, 3))
def test_the_replayed_period_equals_what_the_heaps_choose(weights: list[int], scale: int) -> None:
    replayed = scheduler([float(w * scale) for w in weights], clock=FakeClock())
    # A tiny fractional part keeps a weight from being whole, which forces the heaps.
    nudged = [w + 1e-9 if i == 0 else float(w) for i, w in enumerate(weights)]
    heaps = scheduler(nudged, clock=FakeClock())
    n = sum(weights)
    assert picks(replayed, n) == wf2q_period(weights)
    assert Counter(picks(heaps, n)) == Counter(wf2q_period(weights))


@given(
    weights=st.lists(st.integers(1, 6), min_size=2, max_size=5),
    before=st.integers(0, 30),
    after=st.integers(1, 60),
)
def test_shares_stay_fair_after_a_member_closes_mid_period(
    weights: list[int], before: int, after: int
) -> None:
    clock = FakeClock()
    # d0 can take `before // 2 + 1` requests, then stays closed for the rest of the test.
    cap = before // 2 + 1
    limits = [Limits(rpm=f"{cap}/day")] + [Limits()] * (len(weights) - 1)
    s = scheduler([float(w) for w in weights], limits, clock=clock)
    picks(s, before)
    counts = Counter(picks(s, after + cap))  # d0 closes somewhere in here
    rest = [i for i in range(1, len(weights))]
    served = sum(counts[i] for i in rest)
    total = sum(weights[i] for i in rest)
    for i in rest:
        # Once d0 is out, the others share its turns in proportion; allow one pick of
        # slack for the switch and one for the prefix bound.
        assert abs(counts[i] - served * weights[i] / total) < 2


def test_a_member_that_reopens_rejoins_the_replay_without_a_burst() -> None:
    clock = FakeClock()
    s = scheduler([1.0, 1.0, 1.0], [Limits(rpm=1), Limits(), Limits()], clock=clock)
    first = picks(s, 9)
    assert first.count(0) == 1
    clock.advance(60)  # d0 has one request again
    again = picks(s, 3)
    assert Counter(again) == {0: 1, 1: 1, 2: 1}


@given(st.lists(st.integers(1, 6), min_size=1, max_size=5), st.integers(1, 4), st.integers(1, 3))
def test_after_whole_periods_every_member_starts_at_the_virtual_time(
    weights: list[int], scale: int, periods: int
) -> None:
    s = scheduler([float(w * scale) for w in weights], clock=FakeClock())
    picks(s, sum(weights) * periods)  # the period of weights w * scale is sum(weights)
    tier = s._tree.groups["g"].tiers[0]
    assert isinstance(tier, RoundRobinTier)
    tier._stop_replay()  # what a member closing now would do
    # Exact WF2Q+: after whole periods every member has had exactly its share.
    vtime = tier._vtime
    assert vtime == pytest.approx(periods * sum(weights) / (scale * sum(weights)))
    for edge in tier.edges:
        assert tier.start_of(edge) == pytest.approx(vtime)
