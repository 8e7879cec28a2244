"""Wildcard model_names (``openai/*``, ``*``): requests whose names match route to the
wildcard group, as LiteLLM's pattern router picks it; an exact group or alias wins."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clirun import entry
from ratetree import NoCapacity, Scheduler
from ratetree.config.litellm import load_litellm
from ratetree.core.build import Tree
from ratetree.testing import FakeClock

MODEL_LIST = [
    entry("*", "openai/*", rpm=1),
    entry("openai/*", "openai/*", rpm=2),
    entry("openai/gpt-4o", "openai/gpt-4o", rpm=3),
    entry("a*b", "openai/*"),
    entry("fo::*::static::*", "openai/fo::*::static::*"),
]


def tree(model_list: list[dict[str, object]] = MODEL_LIST, **kwargs: Any) -> Tree:
    return Tree(load_litellm(model_list, **kwargs))


@pytest.mark.parametrize(
    ("request_name", "group"),
    [
        ("openai/gpt-4o", "openai/gpt-4o"),  # an exact group beats every pattern
        ("openai/gpt-5", "openai/*"),
        ("anthropic/claude", "*"),
        ("axxbzz", "a*b"),  # re.match: the pattern need only match the start
        ("fo::a::static::b", "fo::*::static::*"),  # the longest pattern first
        ("", "*"),
    ],
)
def test_a_request_goes_to_the_group_litellm_would_pick(request_name: str, group: str) -> None:
    found = tree().lookup(request_name)
    assert found is not None and found.name == group


def test_a_wildcard_model_is_a_deployment_even_where_it_names_a_wildcard_group() -> None:
    spec = load_litellm(MODEL_LIST)
    assert [m.deployment is not None for g in spec.groups for m in g.members] == [True] * 5


def test_an_alias_beats_a_pattern_and_no_pattern_means_no_group() -> None:
    t = tree(
        [entry("openai/*", "openai/*"), entry("fast", "p/f")],
        model_group_alias={"openai/fast": "fast"},
    )
    assert t.lookup("openai/fast").name == "fast"  # type: ignore[union-attr]
    assert t.lookup("anthropic/x") is None
    assert t.lookup(["not", "hashable"]) is None


def test_requests_matching_one_pattern_share_its_deployments_limits() -> None:
    spec = load_litellm([entry("openai/*", "openai/*", rpm=2)])
    scheduler = Scheduler(spec, clock=FakeClock(), rng=random.Random(0))
    scheduler.acquire("openai/gpt-4o").release()
    scheduler.acquire("openai/gpt-5").release()
    with pytest.raises(NoCapacity):
        scheduler.acquire("openai/o3")


# --- the same choice as LiteLLM's own pattern router, on generated configs -------------

pieces = st.sampled_from(["a", "b", "/", "*", ".", "::"])
patterns = st.lists(pieces, min_size=1, max_size=5).map("".join)


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(patterns, min_size=1, max_size=6, unique=True),
    request_name=st.lists(st.sampled_from(["a", "b", "/", ".", ":", "x"]), max_size=8).map("".join),
)
def test_lookup_matches_litellms_pattern_router(names: list[str], request_name: str) -> None:
    module = pytest.importorskip(
        "litellm.litellm_core_utils.pattern_match_deployments",
        reason="the oracle is LiteLLM's PatternMatchRouter (the litellm extra)",
    )
    router = module.PatternMatchRouter()
    for name in names:
        if "*" in name:
            router.add_pattern(name, {"model_name": name, "litellm_params": {"model": "p/x"}})
    t = tree([entry(name, "p/x") for name in names])
    found = t.lookup(request_name)
    if request_name in names:
        assert found is not None and found.name == request_name
        return
    routed = router.route(request_name)
    expected = routed[0]["model_name"] if routed else None
    assert (found.name if found is not None else None) == expected
