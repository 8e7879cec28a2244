"""The benchmark's tree builders (``benchmarks/trees.py``) build what the report says they
time: n deployments in three levels or one flat group, 90% of them drained, a tight root
limit that one lease fills, and the same deployments for LiteLLM. No timing here."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ratetree import NoCapacity, Scheduler
from trees import (
    EXHAUSTED_FRACTION,
    ROOT,
    STRATEGIES,
    Shape,
    branching,
    build,
    deployment_ids,
    flat_spec,
    litellm_model_list,
    pick_drained,
    three_level_spec,
)


@given(st.integers(min_value=1, max_value=3000))
def test_the_three_level_tree_holds_each_of_n_deployments_once_at_depth_three(n: int) -> None:
    spec = three_level_spec(n, "shuffle")
    groups = {g.name: g for g in spec.groups}
    k = branching(n)
    # groups[...] of a deployment id would raise: mids and leaves are groups.
    mids = [m.target for m in groups[ROOT].members]
    leaves = [m.target for mid in mids for m in groups[mid].members]
    held = Counter(m.target for leaf in leaves for m in groups[leaf].members)
    assert (len(mids), len(leaves)) == (k, k * k)
    assert sorted(held) == deployment_ids(n) == [d.id for d in spec.deployments]
    assert set(held.values()) == {1}
    sizes = [len(groups[leaf].members) for leaf in leaves]
    assert max(sizes) - min(sizes) <= 1


def test_the_flat_group_lists_every_deployment_directly() -> None:
    spec = flat_spec(1000, "round-robin")
    (root,) = spec.groups
    assert [m.deployment for m in root.members] == deployment_ids(1000)
    assert root.strategy == "round-robin"


@pytest.mark.parametrize("shape", ["tree", "flat"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_exhausted_closes_exactly_the_drained_ninety_percent(shape: Shape, strategy: str) -> None:
    scheduler = build(200, strategy, "exhausted", shape=shape)
    closed = {d for d, s in scheduler.snapshot().deployments.items() if not s.open}
    assert closed == pick_drained(200)
    assert len(closed) == round(EXHAUSTED_FRACTION * 200)
    lease = scheduler.acquire(ROOT, tokens=100)
    assert lease.deployment_id not in closed


def test_the_tight_root_limit_is_full_with_one_lease_and_open_after_its_release() -> None:
    scheduler = build(100, "shuffle", tight_limit=True)
    lease = scheduler.acquire(ROOT, tokens=100)
    with pytest.raises(NoCapacity):
        scheduler.acquire(ROOT)
    lease.release(80)
    scheduler.acquire(ROOT).release()


def test_litellm_gets_the_same_deployments_under_one_model_name() -> None:
    model_list = litellm_model_list(100)
    assert [e["model_info"]["id"] for e in model_list] == deployment_ids(100)
    assert {e["model_name"] for e in model_list} == {ROOT}
    # Loaded by ratetree, the same list is one flat group of those deployments.
    scheduler = Scheduler.from_litellm(model_list)
    assert scheduler.groups == (ROOT,)
    assert sorted(scheduler.snapshot().deployments) == deployment_ids(100)
