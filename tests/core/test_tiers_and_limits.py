"""Where limits sit (deployment, group, reference) and how order tiers use them."""

from __future__ import annotations

import random
from collections.abc import Mapping

import pytest

from ratetree import (
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    RatetreeError,
    Scheduler,
    TreeSpec,
    UnknownGroup,
)
from ratetree.testing import FakeClock


def build(
    groups: list[Group],
    deployments: list[Deployment],
    *,
    aliases: Mapping[str, str] | None = None,
    clock: FakeClock | None = None,
) -> Scheduler:
    return Scheduler(
        TreeSpec(groups, deployments, aliases=aliases or {}),
        clock=clock or FakeClock(),
        rng=random.Random(1),
    )


def test_a_request_too_big_for_tier_one_goes_to_tier_two_while_small_ones_stay() -> None:
    s = build(
        [Group("g", [Member(deployment="small", order=1), Member(deployment="big", order=2)])],
        [Deployment("small", Limits(tpm=1000)), Deployment("big", Limits(tpm=100_000))],
    )
    assert s.acquire("g", tokens=5000).deployment_id == "big"
    assert s.acquire("g", tokens=500).deployment_id == "small"
    assert s.acquire("g", tokens=600).deployment_id == "big"  # only 500 left in "small"
    assert s.acquire("g", tokens=500).deployment_id == "small"


def test_members_without_order_rank_after_every_ordered_one() -> None:
    s = build(
        [
            Group(
                "g",
                [
                    Member(deployment="none"),
                    Member(deployment="three", order=3),
                    Member(deployment="minus", order=-1),
                ],
            )
        ],
        [Deployment(n, Limits(rpm=1)) for n in ("none", "three", "minus")],
    )
    assert [s.acquire("g").deployment_id for _ in range(3)] == ["minus", "three", "none"]


def test_a_limit_on_the_reference_sends_later_tiers_traffic_before_any_refusal() -> None:
    s = build(
        [
            Group("sub", [Member(deployment="a")]),
            Group(
                "g",
                [
                    Member(group="sub", order=1, limits=Limits(rpm=2)),
                    Member(deployment="b", order=2),
                ],
            ),
        ],
        [Deployment("a", Limits(rpm=100)), Deployment("b")],
    )
    assert [s.acquire("g").deployment_id for _ in range(4)] == ["a", "a", "b", "b"]
    # The reference capped only what "g" sends; "sub" asked directly still reaches "a".
    assert s.acquire("sub").deployment_id == "a"


def test_a_group_limit_is_shared_by_everything_below_it() -> None:
    s = build(
        [Group("g", [Member(deployment="a"), Member(deployment="b")], limits=Limits(rpm=3))],
        [Deployment("a"), Deployment("b")],
    )
    assert sum(s.try_acquire("g") is not None for _ in range(10)) == 3


def test_a_group_limit_caps_traffic_through_it_but_not_traffic_asked_of_its_members() -> None:
    s = build(
        [
            Group("sub", [Member(deployment="a")], limits=Limits(rpm=2)),
            Group("top", [Member(group="sub")], limits=Limits(rpm=1)),
        ],
        [Deployment("a")],
    )
    assert s.try_acquire("top") is not None
    assert s.try_acquire("top") is None  # top's own cap
    assert s.try_acquire("sub") is not None  # sub's second request
    assert s.try_acquire("sub") is None  # sub's cap counts the request that came via top


def test_a_deployment_in_two_groups_has_one_budget() -> None:
    s = build(
        [
            Group("x", [Member(deployment="shared")]),
            Group("y", [Member(deployment="shared")]),
            Group("both", [Member(group="x"), Member(group="y")]),
        ],
        [Deployment("shared", Limits(rpm=5))],
    )
    names = ["x", "y", "both"] * 10
    assert sum(s.try_acquire(n) is not None for n in names) == 5


def test_a_composed_tree_admits_the_same_totals_as_its_hand_flattened_twin() -> None:
    deployments = [
        Deployment("g1", Limits(rpm=7, tpm=5000)),
        Deployment("g2", Limits(rpm=4)),
        Deployment("z1", Limits(rpm=9, max_parallel_requests=50)),
    ]
    composed = build(
        [
            Group("gpt", [Member(deployment="g1", order=1), Member(deployment="g2", order=2)]),
            Group("glm", [Member(deployment="z1")]),
            Group("fast", [Member(group="gpt"), Member(group="glm")]),
        ],
        deployments,
    )
    flat = build(
        [Group("fast", [Member(deployment=d.id) for d in deployments])],
        deployments,
    )
    for s in (composed, flat):
        admitted = 0
        while s.try_acquire("fast", tokens=200) is not None:
            admitted += 1
        assert admitted == 7 + 4 + 9


def test_work_conservation_reaches_the_one_open_deployment_deep_in_the_tree() -> None:
    groups = [Group(f"leaf{i}", [Member(deployment=f"d{i}")]) for i in range(20)]
    groups.append(Group("mid", [Member(group=f"leaf{i}") for i in range(20)]))
    groups.append(Group("top", [Member(group="mid")]))
    s = build(groups, [Deployment(f"d{i}", Limits(rpm=1)) for i in range(20)])
    assert sum(s.try_acquire("top") is not None for _ in range(25)) == 20


def test_retry_after_is_the_earliest_path_not_the_first() -> None:
    clock = FakeClock()
    s = build(
        [Group("g", [Member(deployment="slow", order=1), Member(deployment="quick", order=2)])],
        [Deployment("slow", Limits(rpm=1)), Deployment("quick", Limits(rpm=6))],
        clock=clock,
    )
    for _ in range(7):
        s.acquire("g")
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(10.0)  # "quick" refills every 10 s


def test_retry_after_accounts_for_a_limit_higher_up_the_path() -> None:
    s = build(
        [Group("g", [Member(deployment="d")], limits=Limits(rpm="1/hour"))],
        [Deployment("d", Limits(rpm=60))],
    )
    s.acquire("g")
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(3600.0)


def test_several_rates_on_one_node_must_all_allow_the_request() -> None:
    clock = FakeClock()
    s = build(
        [Group("g", [Member(deployment="d")])],
        [Deployment("d", Limits(rpm="2/second;3/minute"))],
        clock=clock,
    )
    assert sum(s.try_acquire("g") is not None for _ in range(5)) == 2
    clock.advance(1.0)
    assert sum(s.try_acquire("g") is not None for _ in range(5)) == 1
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(19.0)  # the minute bucket: 1 per 20 s


def test_an_unknown_group_raises_unknown_group_which_is_a_key_error() -> None:
    s = build([Group("g", [Member(deployment="d")])], [Deployment("d")])
    with pytest.raises(UnknownGroup) as info:
        s.acquire("nope")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, RatetreeError)
    assert "nope" in str(info.value)


def test_an_alias_resolves_to_its_group() -> None:
    s = build([Group("g", [Member(deployment="d")])], [Deployment("d")], aliases={"old": "g"})
    assert s.acquire("old").path == ("old", "d")


@pytest.mark.parametrize("tokens", [-1, float("nan"), float("inf")])
def test_a_negative_or_non_finite_token_count_is_a_value_error(tokens: float) -> None:
    s = build([Group("g", [Member(deployment="d")])], [Deployment("d")])
    with pytest.raises(ValueError, match="tokens"):
        s.acquire("g", tokens=tokens)


def test_a_request_larger_than_every_path_can_hold_is_a_value_error() -> None:
    s = build(
        [Group("g", [Member(deployment="a"), Member(deployment="b", limits=Limits(tpm=500))])],
        [Deployment("a", Limits(tpm=1000)), Deployment("b", Limits(tpm=5000))],
    )
    with pytest.raises(ValueError, match="1000"):
        s.acquire("g", tokens=1001)
    assert s.acquire("g", tokens=1000).deployment_id == "a"  # one path can hold it


def test_a_request_only_some_paths_can_hold_waits_for_those() -> None:
    clock = FakeClock()
    s = build(
        [Group("g", [Member(deployment="a"), Member(deployment="b")])],
        [Deployment("a", Limits(tpm=600)), Deployment("b", Limits(tpm=60))],
        clock=clock,
    )
    s.acquire("g", tokens=600)
    with pytest.raises(NoCapacity) as info:
        s.acquire("g", tokens=300)
    assert info.value.retry_after == pytest.approx(30.0)  # only "a" could ever hold 300


@pytest.mark.parametrize("tokens", [None, "5", True])
def test_a_token_count_that_is_no_number_is_a_value_error(tokens: object) -> None:
    s = build([Group("g", [Member(deployment="d")])], [Deployment("d")])
    with pytest.raises(ValueError, match="tokens"):
        s.acquire("g", tokens=tokens)
    with pytest.raises(ValueError, match="tokens"):
        s.explain("g", tokens=tokens)
