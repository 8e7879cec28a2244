"""Within one tier, each group's strategy decides which open member goes next."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import Deployment, GateSnapshot, Group, Lease, Limits, Member, Scheduler, TreeSpec
from ratetree.core.specs import Strategy
from ratetree.testing import FakeClock


def flat(
    strategy: Strategy,
    deployments: list[Deployment],
    *,
    seed: int = 0,
    clock: FakeClock | None = None,
) -> Scheduler:
    spec = TreeSpec(
        groups=[Group("g", [Member(deployment=d.id) for d in deployments], strategy=strategy)],
        deployments=deployments,
    )
    return Scheduler(spec, clock=clock or FakeClock(), rng=random.Random(seed))


def counts(s: Scheduler, n: int, group: str = "g") -> Counter[str]:
    out: Counter[str] = Counter()
    for _ in range(n):
        with s.acquire(group) as lease:
            out[lease.deployment_id] += 1
    return out


@given(
    weights=st.lists(
        st.one_of(st.integers(1, 20), st.sampled_from([0.5, 1.5, 2.25])), min_size=1, max_size=9
    ),
    picks=st.integers(1, 300),
)
def test_round_robin_keeps_every_prefix_within_one_pick_of_the_exact_share(
    weights: list[float], picks: int
) -> None:
    s = flat("round-robin", [Deployment(f"d{i}", weight=w) for i, w in enumerate(weights)])
    total = sum(weights)
    seen = [0] * len(weights)
    for k in range(1, picks + 1):
        seen[int(s.acquire("g").deployment_id[1:])] += 1
        for i, w in enumerate(weights):
            assert abs(seen[i] - k * w / total) < 1


def test_round_robin_is_deterministic_whatever_the_rng() -> None:
    deployments = [Deployment(f"d{i}", weight=w) for i, w in enumerate([3, 1, 2])]
    runs = [
        [flat("round-robin", deployments, seed=seed).acquire("g").deployment_id] for seed in (1, 2)
    ]
    assert runs[0] == runs[1]
    a, b = (flat("round-robin", deployments, seed=seed) for seed in (1, 2))
    assert [a.acquire("g").deployment_id for _ in range(60)] == [
        b.acquire("g").deployment_id for _ in range(60)
    ]


def test_round_robin_skips_an_exhausted_member_without_owing_it_turns_later() -> None:
    clock = FakeClock()
    deployments = [Deployment("a", Limits(rpm=2)), Deployment("b"), Deployment("c")]
    s = flat("round-robin", deployments, clock=clock)
    first = counts(s, 30)
    assert first["a"] == 2  # its bucket holds two
    clock.advance(60)
    # Back with a full bucket, "a" gets its fair third, not a burst to catch up.
    again = [s.acquire("g").deployment_id for _ in range(6)]
    assert again.count("a") == 2


def test_shuffle_picks_in_proportion_to_weight() -> None:
    s = flat("shuffle", [Deployment("a", weight=1), Deployment("b", weight=3)], seed=5)
    seen = counts(s, 20_000)
    assert seen["b"] / seen["a"] == pytest.approx(3.0, rel=0.06)


@pytest.mark.parametrize(
    ("fields", "expected_share_of_b"),
    [
        ({"weight": (1, 3)}, 0.75),
        ({"rpm": (100, 300)}, 0.75),
        ({"tpm": (1000, 9000)}, 0.9),
        ({}, 0.5),
    ],
)
def test_shuffle_weighs_by_weight_else_rpm_else_tpm_else_uniformly(
    fields: dict[str, tuple[int, int]], expected_share_of_b: float
) -> None:
    def make(i: int, name: str) -> Deployment:
        limits = Limits(**{k: v[i] * 1000 for k, v in fields.items() if k != "weight"})
        weight = fields["weight"][i] if "weight" in fields else None
        return Deployment(name, limits, weight=weight)

    s = flat("shuffle", [make(0, "a"), make(1, "b")], seed=9)
    seen = counts(s, 8000)
    assert seen["b"] / 8000 == pytest.approx(expected_share_of_b, abs=0.02)


def test_shuffle_members_without_the_key_weigh_zero_but_still_serve_when_alone() -> None:
    clock = FakeClock()
    s = flat("shuffle", [Deployment("keyed", Limits(rpm=3)), Deployment("bare")], clock=clock)
    assert [s.acquire("g").deployment_id for _ in range(3)] == ["keyed"] * 3
    # "keyed" is empty: the zero-weight member serves rather than refusing.
    assert s.acquire("g").deployment_id == "bare"


def test_a_group_member_weighs_the_sum_of_its_members_so_composition_splits_like_flat() -> None:
    deployments = [Deployment(f"d{i}", weight=w) for i, w in enumerate([1, 1, 1, 3])]
    composed = TreeSpec(
        groups=[
            Group(
                "left", [Member(deployment="d0"), Member(deployment="d1"), Member(deployment="d2")]
            ),
            Group("right", [Member(deployment="d3")]),
            Group("g", [Member(group="left"), Member(group="right")]),
        ],
        deployments=deployments,
    )
    s = Scheduler(composed, clock=FakeClock(), rng=random.Random(2))
    seen = counts(s, 12_000)
    assert seen["d3"] / 12_000 == pytest.approx(0.5, abs=0.02)
    assert seen["d0"] / 12_000 == pytest.approx(1 / 6, abs=0.02)


def test_a_weight_on_the_reference_overrides_the_group_sum() -> None:
    spec = TreeSpec(
        groups=[
            Group("big", [Member(deployment="a"), Member(deployment="b")]),
            Group("small", [Member(deployment="c")]),
            Group("g", [Member(group="big", weight=1), Member(group="small", weight=3)]),
        ],
        deployments=[Deployment("a", weight=10), Deployment("b", weight=10), Deployment("c")],
    )
    s = Scheduler(spec, clock=FakeClock(), rng=random.Random(4))
    seen = counts(s, 8000)
    assert seen["c"] / 8000 == pytest.approx(0.75, abs=0.02)


def test_least_busy_picks_the_member_with_fewest_leases_in_flight() -> None:
    s = flat("least-busy", [Deployment(n) for n in "abc"], seed=1)
    held = [s.acquire("g") for _ in range(3)]
    assert sorted(lease.deployment_id for lease in held) == ["a", "b", "c"]
    extra = s.acquire("g")  # all at one in flight: any of them
    held[[lease.deployment_id for lease in held].index("b")].release()
    if extra.deployment_id != "b":
        assert s.acquire("g").deployment_id == "b"
    extra.release()


def test_usage_based_picks_the_most_remaining_fraction_of_the_tightest_limit() -> None:
    s = flat(
        "usage-based",
        [Deployment("a", Limits(rpm=10)), Deployment("b", Limits(rpm=100, tpm=1000))],
    )
    for _ in range(5):
        s.acquire("g", tokens=0).release()  # whichever was fuller goes first
    # Now a has 10 - x requests left and b has 100 - (5 - x); b's tpm is untouched.
    # A 300-token request leaves b at 700/1000 = 0.7, but the choice is made on the
    # state before it: a is at most 0.9 full while b is at least 0.95.
    assert s.acquire("g", tokens=300).deployment_id == "b"
    # b is now at 0.7 of its tightest limit (tpm); a, at >= 0.5 of rpm ... compare exactly:
    snap = s.snapshot().deployments
    a_left = snap["a"].buckets[0].remaining / 10
    b_left = min(snap["b"].buckets[0].remaining / 100, snap["b"].buckets[1].remaining / 1000)
    expected = "a" if a_left > b_left else "b"
    assert s.acquire("g").deployment_id == expected


def remaining_fraction(gate: GateSnapshot) -> float:
    fractions = [b.remaining / b.rate.amount for b in gate.buckets]
    if gate.max_parallel_requests is not None:
        fractions.append(1 - gate.in_flight / gate.max_parallel_requests)
    return min([1.0, *fractions])


deployment_limits = st.builds(
    Limits,
    rpm=st.one_of(st.none(), st.integers(1, 6), st.sampled_from(["3/minute", "2/10 second"])),
    tpm=st.one_of(st.none(), st.integers(100, 2000)),
    max_parallel_requests=st.one_of(st.none(), st.integers(1, 3)),
)


@pytest.mark.parametrize("strategy", ["least-busy", "usage-based"])
@given(
    limits=st.lists(deployment_limits, min_size=1, max_size=6),
    steps=st.lists(
        st.tuples(st.sampled_from(["acquire", "release", "advance"]), st.integers(0, 500)),
        max_size=60,
    ),
)
def test_least_busy_and_usage_based_pick_a_best_open_member_at_every_step(
    strategy: Strategy, limits: list[Limits], steps: list[tuple[str, int]]
) -> None:
    clock = FakeClock()
    s = flat(strategy, [Deployment(f"d{i}", lim) for i, lim in enumerate(limits)], clock=clock)
    held: list[Lease] = []
    for action, amount in steps:
        if action == "advance":
            clock.advance(amount / 50)
        elif action == "release" and held:
            held.pop(amount % len(held)).release(tokens=amount)
        elif action == "acquire":
            snap = s.snapshot().deployments
            open_ = {name: gate for name, gate in snap.items() if gate.open}
            lease = s.try_acquire("g")
            if not open_:
                assert lease is None
                continue
            assert lease is not None
            held.append(lease)
            score: dict[str, float]
            if strategy == "least-busy":
                score = {n: -g.in_flight for n, g in open_.items()}
            else:
                score = {n: remaining_fraction(g) for n, g in open_.items()}
            assert score[lease.deployment_id] >= max(score.values()) - 1e-9


def test_usage_based_ranks_a_group_member_by_its_best_path_so_composition_spreads_load() -> None:
    deployments = [Deployment(f"d{i}", Limits(rpm=10)) for i in range(12)]
    groups = [
        Group(
            f"sub{j}", [Member(deployment=f"d{i}") for i in range(3 * j, 3 * j + 3)], "usage-based"
        )
        for j in range(4)
    ]
    groups.append(Group("top", [Member(group=f"sub{j}") for j in range(4)], "usage-based"))
    s = Scheduler(TreeSpec(groups, deployments), clock=FakeClock(), rng=random.Random(0))
    first_round = Counter(s.acquire("top").deployment_id for _ in range(12))
    assert first_round == {f"d{i}": 1 for i in range(12)}


@given(
    rpms=st.lists(st.lists(st.integers(1, 8), min_size=1, max_size=4), min_size=1, max_size=4),
    group_rpm=st.lists(st.one_of(st.none(), st.integers(2, 20)), min_size=4, max_size=4),
    steps=st.lists(st.sampled_from(["acquire", "release", "advance"]), max_size=50),
)
def test_usage_based_over_groups_picks_the_path_with_the_most_left(
    rpms: list[list[int]], group_rpm: list[int | None], steps: list[str]
) -> None:
    clock = FakeClock()
    deployments, groups, paths = [], [], {}
    for j, sub in enumerate(rpms):
        names = []
        for i, rpm in enumerate(sub):
            deployments.append(Deployment(f"d{j}.{i}", Limits(rpm=rpm)))
            names.append(f"d{j}.{i}")
            paths[f"d{j}.{i}"] = (f"g{j}", f"d{j}.{i}")
        groups.append(
            Group(
                f"g{j}",
                [Member(deployment=n) for n in names],
                "usage-based",
                Limits(rpm=group_rpm[j]),
            )
        )
    groups.append(Group("top", [Member(group=f"g{j}") for j in range(len(rpms))], "usage-based"))
    s = Scheduler(TreeSpec(groups, deployments), clock=clock, rng=random.Random(0))
    held: list[Lease] = []
    for step in steps:
        if step == "advance":
            clock.advance(1.7)
        elif step == "release" and held:
            held.pop(0).release()
        elif step == "acquire":
            snap = s.snapshot()
            room = {
                d: min(remaining_fraction(snap.groups[g]), remaining_fraction(snap.deployments[d]))
                for d, (g, _) in paths.items()
                if snap.deployments[d].open and snap.groups[g].open
            }
            lease = s.try_acquire("top")
            assert (lease is None) == (not room)
            if lease is not None:
                held.append(lease)
                assert room[lease.deployment_id] >= max(room.values()) - 1e-9
