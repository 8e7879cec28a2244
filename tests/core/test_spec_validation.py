"""Every public constructor refuses bad types and values with a RatetreeError that names
the field; values at the edges (zero rates, huge weights) load and behave."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import (
    ConfigError,
    Deployment,
    Group,
    Limits,
    Member,
    NoCapacity,
    Rate,
    RatetreeError,
    Scheduler,
    SpecTypeError,
    TreeSpec,
)
from ratetree.core.validate import show
from ratetree.testing import FakeClock


@pytest.mark.parametrize(
    ("amount", "period", "fragment"),
    [
        (math.nan, 60, "amount nan"),
        (5, math.nan, "period nan"),
        (5, math.inf, "period inf"),
        (math.inf, 60, "amount inf"),
        (-1, 60, "amount -1"),
        (5, -60, "period -60"),
        (5, 0, "period 0"),
        (10**400, 60, "amount 1000"),
    ],
)
def test_a_rate_out_of_range_is_a_config_error(amount: float, period: float, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Rate(amount, period)


@pytest.mark.parametrize(("amount", "period"), [("5", 60), (5, None), (True, 60)])
def test_a_rate_of_the_wrong_type_is_a_spec_type_error(amount: object, period: object) -> None:
    with pytest.raises(SpecTypeError, match=r"rate (amount|period)"):
        Rate(amount, period)


@pytest.mark.parametrize(
    "text", ["1" + "0" * 400 + "/minute", "5/" + "1" * 400 + " seconds", "5/1 second;1e999/day"]
)
def test_a_rate_string_with_a_huge_number_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="rpm"):
        Limits(rpm=text)


def make(**limits: object) -> Scheduler:
    spec = TreeSpec([Group("g", [Member(deployment="a")])], [Deployment("a", Limits(**limits))])
    return Scheduler(spec, clock=FakeClock(), rng=random.Random(0))


def test_rpm_zero_admits_nothing() -> None:
    scheduler = make(rpm=0)
    with pytest.raises(NoCapacity):
        scheduler.acquire("g")
    assert not scheduler.snapshot().deployments["a"].open


def test_tpm_zero_admits_only_requests_without_tokens() -> None:
    scheduler = make(tpm=0, rpm="0/second")
    with pytest.raises(NoCapacity):
        scheduler.acquire("g", tokens=0)
    scheduler = make(tpm=0)
    scheduler.acquire("g", tokens=0).release()
    assert scheduler.explain("g", tokens=5).candidates == ()


# The constructors as an untyped caller sees them: these cases pass what the types forbid.
UntypedDeployment: Any = Deployment
UntypedMember: Any = Member
UntypedGroup: Any = Group
UntypedTreeSpec: Any = TreeSpec
UntypedScheduler: Any = Scheduler


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: UntypedDeployment("x", limits={"rpm": 5}), "deployment limits"),
        (lambda: UntypedDeployment("x", label=5), "deployment label"),
        (lambda: UntypedMember(group="a", limits=5), "member limits"),
        (lambda: UntypedGroup("a", [1]), r"group 'a' members\[0\]"),
        (lambda: UntypedGroup("a", 5), "group members"),
        (lambda: UntypedGroup("a", "ab"), "group members"),
        (lambda: UntypedGroup("a", [Member(deployment="d")], limits={}), "group limits"),
        (lambda: UntypedTreeSpec([1], []), r"groups\[0\]"),
        (lambda: UntypedTreeSpec([], [None]), r"deployments\[0\]"),
        (lambda: UntypedTreeSpec([], [], aliases=[1]), "aliases"),
        (lambda: UntypedTreeSpec([], [], aliases={"a": 1}), "aliases"),
        (lambda: UntypedTreeSpec([], [], hidden=[1]), "hidden"),
        (lambda: UntypedScheduler(None), "spec None must be a TreeSpec"),
        (lambda: UntypedScheduler([]), "spec"),
    ],
)
def test_a_wrong_type_is_a_spec_type_error_naming_the_field(build: object, fragment: str) -> None:
    with pytest.raises(SpecTypeError, match=fragment) as caught:
        build()  # type: ignore[operator]
    assert isinstance(caught.value, TypeError)
    assert isinstance(caught.value, RatetreeError)


def test_reconfigure_with_a_wrong_type_changes_nothing() -> None:
    scheduler = make(rpm=5)
    with pytest.raises(SpecTypeError, match="spec None"):
        scheduler.reconfigure(None)  # type: ignore[arg-type]
    scheduler.acquire("g").release()


@pytest.mark.parametrize("strategy", ["shuffle", "round-robin", "least-busy", "usage-based"])
@pytest.mark.parametrize(
    "kind", [{"weight": 1e308}, {"limits": Limits(rpm=1e308)}, {"limits": Limits(tpm=1e308)}]
)
def test_limits_that_overflow_when_summed_still_load_and_serve(
    strategy: str, kind: dict[str, object]
) -> None:
    inner = [Member(deployment="a"), Member(deployment="b")]
    spec = TreeSpec(
        [
            Group("in", inner, strategy),
            Group("top", [Member(group="in"), Member(deployment="c")], strategy),
        ],
        [Deployment(d, **kind) for d in "abc"],  # type: ignore[arg-type]
    )
    scheduler = Scheduler(spec, clock=FakeClock(), rng=random.Random(0))
    for _ in range(10):
        scheduler.acquire("top", tokens=10).release()


def nested(depth: int) -> object:
    value: object = ["x"] * 9
    for _ in range(depth):
        value = [value] * 9
    return value


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner) | st.tuples(inner),
    )
)
def test_show_matches_repr_up_to_the_cut(value: object) -> None:
    text = show(value)
    assert len(text) <= 80
    full = repr(value)
    assert text == full if len(full) <= 80 else text == full[:77] + "..."


def test_show_is_bounded_for_shared_huge_and_self_containing_values() -> None:
    assert len(show(nested(30))) == 80  # 9**31 strings if expanded
    loop: list[object] = []
    loop.append(loop)
    assert show(loop).startswith("[[[[")
    assert show(10**10000) == "<int of about 10001 digits>"
