"""latency-based and cost-based: the open member with the lowest key, a sub-group by its
best open path; and usage-based's random tie-break."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import (
    ConfigError,
    Deployment,
    Group,
    InvalidRequest,
    Lease,
    Limits,
    Member,
    Scheduler,
    Snapshot,
    TreeSpec,
)
from ratetree.testing import FakeClock

SMOOTHING = 2 / 11  # LiteLLM's window of 10 latencies, as an EWMA


def shares(s: Scheduler, n: int, level: int = 1, group: str = "top") -> Counter[str]:
    """How often each name appears at ``level`` of the lease path over ``n`` requests."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        with s.acquire(group) as lease:
            seen[lease.path[level]] += 1
    return seen


def scheduler(groups: list[Group], deployments: list[Deployment], **kw: object) -> Scheduler:
    return Scheduler(TreeSpec(groups, deployments), rng=random.Random(7), **kw)  # type: ignore[arg-type]


# -- usage-based ties -----------------------------------------------------------------


def test_usage_based_shares_between_two_unlimited_deployments() -> None:
    s = scheduler(
        [Group("top", [Member(deployment="a"), Member(deployment="b")], "usage-based")],
        [Deployment("a"), Deployment("b")],
        clock=FakeClock(),
    )
    seen = shares(s, 2000)
    assert min(seen["a"], seen["b"]) > 600


def test_usage_based_shares_between_a_deployment_and_a_sub_group() -> None:
    s = scheduler(
        [
            Group("sub", [Member(deployment="b"), Member(deployment="c")], "usage-based"),
            Group("top", [Member(deployment="a"), Member(group="sub")], "usage-based"),
        ],
        [Deployment("a"), Deployment("b"), Deployment("c")],
        clock=FakeClock(),
    )
    seen = shares(s, 2000)
    assert min(seen["a"], seen["sub"]) > 600


# -- cost-based ------------------------------------------------------------------------


def test_cost_based_picks_the_cheapest_until_it_is_full_then_the_next() -> None:
    s = scheduler(
        [Group("top", [Member(deployment=d) for d in "abc"], "cost-based")],
        [
            Deployment("a", Limits(rpm=2), cost=3e-6),
            Deployment("b", Limits(rpm=2), cost=1e-6),
            Deployment("c", cost=None),  # unpriced: after every priced one
        ],
        clock=FakeClock(),
    )
    assert [s.acquire("top").deployment_id for _ in range(6)] == list("bbaacc")


def test_cost_based_shares_between_equal_costs() -> None:
    s = scheduler(
        [Group("top", [Member(deployment=d) for d in "abc"], "cost-based")],
        [Deployment("a", cost=1.0), Deployment("b", cost=1.0), Deployment("c", cost=2.0)],
        clock=FakeClock(),
    )
    seen = shares(s, 1000)
    assert min(seen["a"], seen["b"]) > 300
    assert seen["c"] == 0


def test_a_cost_based_sub_group_ranks_by_its_cheapest_open_path() -> None:
    clock = FakeClock()
    s = scheduler(
        [
            Group("sub", [Member(deployment="cheap"), Member(deployment="dear")], "cost-based"),
            Group("top", [Member(group="sub"), Member(deployment="mid")], "cost-based"),
        ],
        [
            Deployment("cheap", Limits(rpm=1), cost=1.0),
            Deployment("dear", cost=9.0),
            Deployment("mid", Limits(rpm=1), cost=5.0),
        ],
        clock=clock,
    )
    # sub ranks at 1.0 while "cheap" is open, at 9.0 once it is full.
    assert [s.acquire("top").deployment_id for _ in range(3)] == ["cheap", "mid", "dear"]


def test_deployment_cost_is_validated() -> None:
    with pytest.raises(ConfigError, match="cost -1"):
        Deployment("a", cost=-1)
    with pytest.raises(ConfigError, match="cost inf"):
        Deployment("a", cost=math.inf)


# -- latency-based ---------------------------------------------------------------------


def latency_group(names: str, **args: object) -> list[Group]:
    return [
        Group("top", [Member(deployment=d) for d in names], "latency-based", strategy_args=args)
    ]


def test_latency_based_tries_unobserved_members_first_then_the_fastest() -> None:
    s = scheduler(latency_group("abc"), [Deployment(d) for d in "abc"], clock=FakeClock())
    latency = {"a": 0.9, "b": 0.3, "c": 2.0}
    first = []
    for _ in range(3):  # each unobserved one is tried once
        lease = s.acquire("top")
        first.append(lease.deployment_id)
        lease.release(latency=latency[lease.deployment_id])
    assert sorted(first) == ["a", "b", "c"]
    assert shares(s, 50) == {"b": 50}  # released without a latency: the average stays


def test_latency_based_follows_the_moving_average() -> None:
    s = scheduler(latency_group("ab"), [Deployment(d) for d in "ab"], clock=FakeClock())
    for d, seconds in (("a", 1.0), ("b", 2.0)):
        while (lease := s.acquire("top")).deployment_id != d:
            lease.release()
        lease.release(latency=seconds)
    lease = s.acquire("top")
    assert lease.deployment_id == "a"
    lease.release(latency=10.0)  # a: 1 + (10 - 1) * 2/11 = 2.64 > b's 2.0
    assert s.acquire("top").deployment_id == "b"


def test_lowest_latency_buffer_shares_between_members_within_it() -> None:
    def run(buffer: float) -> Counter[str]:
        s = scheduler(
            latency_group("abc", lowest_latency_buffer=buffer),
            [Deployment(d) for d in "abc"],
            clock=FakeClock(),
        )
        observed = {"a": 1.0, "b": 1.2, "c": 2.0}
        seen: Counter[str] = Counter()
        for _ in range(600):
            lease = s.acquire("top")
            seen[lease.deployment_id] += 1
            lease.release(latency=observed[lease.deployment_id])
        return seen

    without = run(0.0)
    assert without["b"] <= 1 and without["c"] <= 1  # tried once while unobserved
    within = run(0.25)
    assert within["b"] > 150 and within["c"] <= 1


def test_latency_must_be_a_finite_number_at_least_zero() -> None:
    s = scheduler(latency_group("a"), [Deployment("a")], clock=FakeClock())
    lease = s.acquire("top")
    for bad in (-1.0, math.nan, "1s", True):
        with pytest.raises(InvalidRequest, match="latency"):
            lease.release(latency=bad)
    assert not lease.released
    lease.release(latency=0.5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"lowest_latency_buffer": -0.1}, "group .top.: lowest_latency_buffer must be"),
        ({"max_latency_list_size": 0}, "max_latency_list_size"),
        ({"ttl": "an hour"}, "group .top.: ttl must be"),
        ({"buffer": 0.1}, "unknown strategy_args 'buffer'"),
    ],
)
def test_bad_strategy_args_are_rejected_naming_the_group(
    args: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Scheduler(TreeSpec(latency_group("a", **args), [Deployment("a")]))


def test_a_strategy_without_args_rejects_any() -> None:
    spec = TreeSpec(
        [Group("top", [Member(deployment="a")], "shuffle", strategy_args={"ttl": 1})],
        [Deployment("a")],
    )
    with pytest.raises(ConfigError, match="group 'top': unknown strategy_args 'ttl'"):
        Scheduler(spec)


def test_unknown_strategy_names_every_registered_one() -> None:
    with pytest.raises(ConfigError) as caught:
        Group("g", [Member(deployment="a")], "fastest")
    for name in ("shuffle", "latency-based", "cost-based"):
        assert name in str(caught.value)


# -- the pick is a best open member by key, in trees -----------------------------------

sub_strategy = st.sampled_from(["same", "same", "shuffle"])


def best_keys(
    snap: Snapshot, top: list[str], subs: dict[str, list[str]], key: dict[str, float]
) -> dict[str, float]:
    """Key of every open member of ``top``: a deployment's own, a sub-group's the lowest
    of its open deployments."""
    out = {}
    for name in top:
        if name in subs:
            if snap.groups[name].open:
                out[name] = min(key[d] for d in subs[name] if snap.deployments[d].open)
        elif snap.deployments[name].open:
            out[name] = key[name]
    return out


@pytest.mark.parametrize("strategy", ["cost-based", "latency-based"])
@given(
    layout=st.lists(st.integers(0, 3), min_size=1, max_size=5),
    sub_kinds=st.lists(sub_strategy, min_size=5, max_size=5),
    rpms=st.lists(st.integers(1, 4), min_size=12, max_size=12),
    values=st.lists(st.sampled_from([0.5, 1.0, 1.5, 3.0]), min_size=12, max_size=12),
    steps=st.lists(st.sampled_from(["acquire", "acquire", "release", "advance"]), max_size=40),
    seed=st.integers(0, 1000),
)
def test_the_pick_is_a_best_open_member_by_key(
    strategy: str,
    layout: list[int],
    sub_kinds: list[str],
    rpms: list[int],
    values: list[float],
    steps: list[str],
    seed: int,
) -> None:
    """Each entry of ``layout`` is a top member: 0 a deployment, k > 0 a sub-group of k
    deployments (of the same strategy, or shuffle: ranked then by a walk)."""
    deployments: list[Deployment] = []
    groups: list[Group] = []
    top: list[str] = []
    subs: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    cost = strategy == "cost-based"

    def deployment() -> str:
        i = len(deployments)
        deployments.append(Deployment(f"d{i}", Limits(rpm=rpms[i]), cost=values[i]))
        return f"d{i}"

    for j, size in enumerate(layout):
        if size == 0:
            top.append(deployment())
            continue
        names = [deployment() for _ in range(size)]
        kind = strategy if sub_kinds[j] == "same" else "shuffle"
        groups.append(Group(f"s{j}", [Member(deployment=n) for n in names], kind))
        subs[f"s{j}"] = names
        kinds[f"s{j}"] = kind
        top.append(f"s{j}")
    groups.append(Group("top", [Member(**member(n, subs)) for n in top], strategy))
    clock = FakeClock()
    s = Scheduler(TreeSpec(groups, deployments), clock=clock, rng=random.Random(seed))
    # The key each deployment ranks by: its cost, or its latency average (0 unobserved).
    key = {d.id: (d.cost or 0.0) if cost else 0.0 for d in deployments}
    held: list[Lease] = []
    observed: set[str] = set()
    for step in steps:
        if step == "advance":
            clock.advance(20)
        elif step == "release" and held:
            lease = held.pop(0)
            d = lease.deployment_id
            seconds = values[int(d[1:])]
            lease.release(latency=seconds)
            if not cost:
                first = d not in observed
                key[d] = seconds if first else key[d] + SMOOTHING * (seconds - key[d])
                observed.add(d)
        elif step == "acquire":
            snap = s.snapshot()
            expected = best_keys(snap, top, subs, key)
            got = s.try_acquire("top")
            assert (got is None) == (not expected)
            if got is None:
                continue
            held.append(got)
            chosen = got.path[1]
            assert expected[chosen] == pytest.approx(min(expected.values()))
            if chosen in subs and kinds[chosen] == strategy:
                inner = {d: key[d] for d in subs[chosen] if snap.deployments[d].open}
                assert inner[got.deployment_id] == pytest.approx(min(inner.values()))


def member(name: str, subs: dict[str, list[str]]) -> dict[str, Any]:
    return {"group": name} if name in subs else {"deployment": name}


def test_unpriced_members_share_the_traffic_with_or_without_an_index() -> None:
    for kind in ("cost-based", "shuffle"):  # a shuffle sub-group: keys by a walk
        s = scheduler(
            [
                Group("sub", [Member(deployment="b")], kind),
                Group("top", [Member(deployment="a"), Member(group="sub")], "cost-based"),
            ],
            [Deployment("a"), Deployment("b")],
            clock=FakeClock(),
        )
        seen = shares(s, 1000)
        assert min(seen["a"], seen["sub"]) > 300, (kind, seen)
