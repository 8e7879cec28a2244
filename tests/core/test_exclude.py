"""``acquire(exclude=...)``: the deployments a caller rules out are never chosen, and the
rest of the tree is searched as if they were closed."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import NoCapacity, Scheduler
from ratetree.testing import FakeClock

# An umbrella group over two sub-groups, orders in the first: a b (order 1) c (order 2), d.
MODEL_LIST = [
    {"model_name": "ab", "litellm_params": {"model": "p/a", "order": 1, "rpm": 3}},
    {"model_name": "ab", "litellm_params": {"model": "p/b", "order": 1, "rpm": 3}},
    {"model_name": "ab", "litellm_params": {"model": "p/c", "order": 2, "rpm": 3}},
    {"model_name": "d", "litellm_params": {"model": "p/d", "rpm": 3}},
    {"model_name": "all", "litellm_params": {"model": "ab"}},
    {"model_name": "all", "litellm_params": {"model": "d"}},
]


def scheduler(seed: int) -> tuple[Scheduler, dict[str, str]]:
    s = Scheduler.from_litellm(MODEL_LIST, clock=FakeClock(), rng=random.Random(seed))
    ids = {d.label or d.id: d.id for d in s.spec.deployments}
    return s, {model.split("/")[1]: i for model, i in ids.items()}


@given(
    seed=st.integers(0, 2**16),
    excluded=st.sets(st.sampled_from("abcd")),
    group=st.sampled_from(["ab", "all"]),
)
def test_an_excluded_deployment_is_never_chosen_and_the_rest_still_serve(
    seed: int, excluded: set[str], group: str
) -> None:
    s, ids = scheduler(seed)
    exclude = frozenset(ids[name] for name in excluded)
    reachable = set("abc") if group == "ab" else set("abcd")
    served = 0
    while True:
        try:
            lease = s.acquire(group, exclude=exclude)
        except NoCapacity:
            break
        assert lease.deployment_id not in exclude
        served += 1
    # Every deployment left admits its 3 requests before the group refuses.
    assert served == 3 * len(reachable - excluded)


def test_excluding_the_order_1_deployments_goes_to_order_2_at_once() -> None:
    s, ids = scheduler(1)
    lease = s.acquire("ab", exclude=frozenset({ids["a"], ids["b"]}))
    assert lease.deployment_id == ids["c"]
    lease.release()
    assert s.acquire("ab").deployment_id in {ids["a"], ids["b"]}


def test_excluding_an_unknown_id_changes_nothing() -> None:
    s, ids = scheduler(1)
    assert s.acquire("d", exclude=frozenset({"nope"})).deployment_id == ids["d"]
    with pytest.raises(NoCapacity):
        s.acquire("d", exclude=frozenset({ids["d"]}))
