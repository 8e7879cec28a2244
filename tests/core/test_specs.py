"""Frozen specs and the ConfigErrors raised for invalid ones."""

from __future__ import annotations

from collections.abc import Mapping

import attrs
import pytest

from ratetree import ConfigError, Deployment, Group, Limits, Member, Rate, Scheduler, TreeSpec


def test_rates_parse_numbers_and_limits_strings() -> None:
    assert Limits(rpm=30).rpm == (Rate(30, 60),)
    assert Limits(tpm="10000/day").tpm == (Rate(10000, 86400),)
    assert Limits(rpm="5/second;100/minute").rpm == (Rate(5, 1), Rate(100, 60))


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("rpm", -5, "rpm -5"),
        ("tpm", "lots", "tpm 'lots' is not a number or a rate"),
        ("tpm", float("nan"), "tpm nan"),
        ("rpm", 0.5, "smaller than one request"),
        ("max_parallel_requests", 0, "max_parallel_requests 0 must be a positive integer"),
        ("max_parallel_requests", 1.5, "max_parallel_requests 1.5"),
        ("rpm", [1], "rpm [1] is not a number or a rate string"),
    ],
)
def test_invalid_limits_raise_config_error_naming_the_value(
    field: str, value: object, fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Limits(**{field: value})


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        Limits(rpm=-1)


def test_specs_are_frozen() -> None:
    d = Deployment("d", Limits(rpm=1))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        d.limits = Limits()  # type: ignore[misc]


def test_a_member_names_exactly_one_target() -> None:
    with pytest.raises(ConfigError, match="exactly one"):
        Member(deployment="a", group="b")
    with pytest.raises(ConfigError, match="exactly one"):
        Member()


@pytest.mark.parametrize("order", ["1", 1.0, 1])
def test_order_accepts_integers_written_several_ways(order: object) -> None:
    assert Member(deployment="a", order=order).order == 1


@pytest.mark.parametrize("order", [1.5, "first", True])
def test_a_non_integer_order_is_a_config_error(order: object) -> None:
    with pytest.raises(ConfigError, match="order"):
        Member(deployment="a", order=order)


def test_an_unknown_strategy_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match="round-robin"):
        Group("g", [Member(deployment="a")], strategy="fastest")


def test_a_group_without_members_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'g' has no members"):
        Group("g", [])


def make(
    groups: list[Group], deployments: list[Deployment], aliases: Mapping[str, str] | None = None
) -> Scheduler:
    return Scheduler(TreeSpec(groups, deployments, aliases=aliases or {}))


def test_a_cycle_is_printed_as_a_chain() -> None:
    with pytest.raises(ConfigError, match="a -> b -> a"):
        make(
            [Group("a", [Member(group="b")]), Group("b", [Member(group="a")])],
            [],
        )


def test_a_cycle_through_an_alias_is_found() -> None:
    with pytest.raises(ConfigError, match="cycle"):
        make(
            [Group("a", [Member(group="bee")]), Group("b", [Member(group="a")])],
            [],
            aliases={"bee": "b"},
        )


@pytest.mark.parametrize(
    ("groups", "deployments", "aliases", "fragment"),
    [
        ([Group("g", [Member(deployment="x")])], [], {}, "unknown deployment 'x'"),
        ([Group("g", [Member(group="x")])], [], {}, "unknown group 'x'"),
        (
            [Group("g", [Member(deployment="d")])],
            [Deployment("d"), Deployment("d")],
            {},
            "deployment id 'd' is defined twice",
        ),
        (
            [Group("g", [Member(deployment="d")]), Group("g", [Member(deployment="d")])],
            [Deployment("d")],
            {},
            "group 'g' is defined twice",
        ),
        ([Group("g", [Member(deployment="d")])], [Deployment("d")], {"g": "g"}, "shadows"),
        (
            [Group("g", [Member(deployment="d")])],
            [Deployment("d")],
            {"a": "nowhere"},
            "'nowhere', which is no group",
        ),
        (
            [Group("g", [Member(deployment="d")])],
            [Deployment("d")],
            {"a": "b", "b": "a"},
            "a -> b -> a",
        ),
    ],
)
def test_inconsistent_trees_raise_config_error(
    groups: list[Group], deployments: list[Deployment], aliases: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=fragment):
        make(groups, deployments, aliases=aliases)
