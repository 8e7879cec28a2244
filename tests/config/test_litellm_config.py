"""load_litellm on valid LiteLLM configurations: what tree each one becomes."""

from __future__ import annotations

import copy
import enum
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clirun import entry
from examples import readme_model_list
from ratetree.config.litellm import load_litellm
from ratetree.core.specs import Deployment, Group, Limits, Member, Rate, TreeSpec


def group(spec: TreeSpec, name: str) -> Group:
    (found,) = [g for g in spec.groups if g.name == name]
    return found


def deployment(spec: TreeSpec, deployment_id: str) -> Deployment:
    (found,) = [d for d in spec.deployments if d.id == deployment_id]
    return found


def per_minute(amount: float) -> tuple[Rate, ...]:
    return (Rate(amount, 60.0),)


# --- the example from the design ------------------------------------------------------


def test_example_config_loads_into_two_leaf_groups_and_one_parent() -> None:
    model_list = readme_model_list()
    spec = load_litellm(model_list)

    assert [g.name for g in spec.groups] == ["fast/GPT-OSS-120b", "fast/glm-4.7", "fast"]
    assert group(spec, "fast").members == (
        Member(group="fast/GPT-OSS-120b"),
        Member(group="fast/glm-4.7"),
    )
    oss = group(spec, "fast/GPT-OSS-120b")
    assert [m.order for m in oss.members] == [2, 1]
    assert [deployment(spec, m.target).limits.rpm for m in oss.members] == [
        per_minute(30),
        per_minute(5),
    ]
    assert len(spec.deployments) == 3
    assert all(g.strategy == "shuffle" for g in spec.groups)


def test_deployment_payload_is_the_original_entry_object_unmodified() -> None:
    model_list = readme_model_list()
    before = copy.deepcopy(model_list)
    spec = load_litellm(model_list)

    assert [d.payload for d in spec.deployments] == [model_list[0], model_list[1], model_list[2]]
    assert spec.deployments[0].payload is model_list[0]
    assert model_list == before


def test_groups_and_deployments_come_out_in_first_appearance_order() -> None:
    spec = load_litellm(
        [
            entry("b", "p/one"),
            entry("a", "p/two"),
            entry("b", "p/three"),
            entry("c", "a"),
            entry("a", "p/four"),
        ]
    )
    assert [g.name for g in spec.groups] == ["b", "a", "c"]
    models = [d.payload["litellm_params"]["model"] for d in spec.deployments]
    assert models == ["p/one", "p/two", "p/three", "p/four"]


def test_empty_model_list_gives_an_empty_tree() -> None:
    assert load_litellm([]) == TreeSpec(groups=(), deployments=())


# --- deployments versus references ---------------------------------------------------


def test_model_equal_to_its_own_model_name_is_a_deployment_not_a_cycle() -> None:
    spec = load_litellm([entry("gpt-4o", "gpt-4o", rpm=10)])
    (member,) = group(spec, "gpt-4o").members
    assert member.deployment is not None
    assert deployment(spec, member.deployment).limits.rpm == per_minute(10)


def test_model_naming_another_group_is_a_reference_carrying_the_entry_settings() -> None:
    spec = load_litellm(
        [
            entry("leaf", "openai/gpt-4o"),
            entry(
                "top",
                "leaf",
                rpm=100,
                tpm="2000000/hour",
                max_parallel_requests=4,
                order="2",
                weight=0.5,
            ),
        ]
    )
    assert group(spec, "top").members == (
        Member(
            group="leaf",
            order=2,
            weight=0.5,
            limits=Limits(rpm=100, tpm="2000000/hour", max_parallel_requests=4),
        ),
    )
    assert len(spec.deployments) == 1


def test_deployment_weight_goes_on_the_deployment_and_order_on_the_member() -> None:
    spec = load_litellm([entry("g", "p/m", weight=3, order=1)])
    (member,) = group(spec, "g").members
    assert member.order == 1
    assert member.weight is None
    assert deployment(spec, member.target).weight == 3.0


@pytest.mark.parametrize("order", [1, "1", 1.0, " 1", "1.0"])
def test_order_accepts_integers_integer_strings_and_integral_floats(order: object) -> None:
    spec = load_litellm([entry("g", "p/m", order=order)])
    assert group(spec, "g").members[0].order == 1


def test_settings_are_read_from_model_info_when_litellm_params_lacks_them() -> None:
    # As LiteLLM reads them: rpm, tpm and order there, weight and max_parallel_requests not.
    info = {"rpm": 7, "tpm": 1000, "order": 3, "weight": 2, "max_parallel_requests": 2}
    spec = load_litellm([entry("g", "p/m", info=info)])
    (member,) = group(spec, "g").members
    dep = deployment(spec, member.target)
    assert member.order == 3
    assert dep.weight is None
    assert dep.limits == Limits(rpm=7, tpm=1000)


def test_litellm_params_take_precedence_over_model_info() -> None:
    spec = load_litellm([entry("g", "p/m", info={"rpm": 7, "order": 3}, rpm=9, order=1)])
    (member,) = group(spec, "g").members
    assert member.order == 1
    assert deployment(spec, member.target).limits.rpm == per_minute(9)


def test_null_settings_count_as_absent() -> None:
    spec = load_litellm([entry("g", "p/m", info={"rpm": 4}, rpm=None, tpm=None, order=None)])
    (member,) = group(spec, "g").members
    assert member.order is None
    assert deployment(spec, member.target).limits == Limits(rpm=4)


def test_references_chain_five_groups_deep() -> None:
    model_list = [entry("g5", "provider/model", rpm=1)]
    model_list += [entry(f"g{i}", f"g{i + 1}", order=i) for i in range(5)]
    spec = load_litellm(model_list)

    for i in range(5):
        assert group(spec, f"g{i}").members == (Member(group=f"g{i + 1}", order=i),)
    assert len(spec.deployments) == 1


def test_a_group_may_mix_deployments_and_references() -> None:
    spec = load_litellm([entry("small", "p/a"), entry("big", "p/b"), entry("big", "small")])
    kinds = [(m.deployment is None, m.target) for m in group(spec, "big").members]
    assert kinds[1] == (True, "small")
    assert kinds[0][0] is False


def test_a_group_referenced_from_two_parents_is_shared_not_copied() -> None:
    spec = load_litellm([entry("leaf", "p/a"), entry("x", "leaf"), entry("y", "leaf")])
    assert group(spec, "x").members == group(spec, "y").members == (Member(group="leaf"),)
    assert len(spec.deployments) == 1


# --- routing strategies --------------------------------------------------------------


@pytest.mark.parametrize(
    ("litellm_name", "ratetree_name"),
    [
        ("simple-shuffle", "shuffle"),
        ("least-busy", "least-busy"),
        ("usage-based-routing", "usage-based"),
        ("usage-based-routing-v2", "usage-based"),
        ("round-robin", "round-robin"),
    ],
)
def test_routing_strategy_maps_to_every_group(litellm_name: str, ratetree_name: str) -> None:
    spec = load_litellm(
        [entry("a", "p/a"), entry("b", "a")],
        routing_strategy=litellm_name,
    )
    assert [g.strategy for g in spec.groups] == [ratetree_name, ratetree_name]


def test_routing_strategy_none_means_litellm_default_shuffle() -> None:
    spec = load_litellm([entry("a", "p/a")], routing_strategy=None)
    assert spec.groups[0].strategy == "shuffle"


def test_routing_strategy_accepts_an_enum_like_litellms_routing_strategy() -> None:
    class RoutingStrategy(enum.Enum):
        LEAST_BUSY = "least-busy"

    spec = load_litellm([entry("a", "p/a")], routing_strategy=RoutingStrategy.LEAST_BUSY)
    assert spec.groups[0].strategy == "least-busy"


# --- aliases ---------------------------------------------------------------------------


def test_alias_chain_resolves_to_the_final_group() -> None:
    spec = load_litellm(
        [entry("gpt-4o", "openai/gpt-4o")],
        model_group_alias={"a1": "a2", "a2": {"model": "a3"}, "a3": "gpt-4o"},
    )
    assert dict(spec.aliases) == {"a1": "gpt-4o", "a2": "gpt-4o", "a3": "gpt-4o"}
    assert spec.hidden == frozenset()


def test_hidden_alias_is_listed_in_hidden() -> None:
    spec = load_litellm(
        [entry("gpt-4o", "openai/gpt-4o")],
        model_group_alias={
            "secret": {"model": "gpt-4o", "hidden": True},
            "public": {"model": "gpt-4o", "hidden": False},
            "plain": "gpt-4o",
        },
    )
    assert spec.hidden == frozenset({"secret"})
    assert set(spec.aliases) == {"secret", "public", "plain"}


def test_reference_through_an_alias_chain_points_at_the_resolved_group() -> None:
    spec = load_litellm(
        [entry("leaf", "p/a"), entry("top", "nick", order=1)],
        model_group_alias={"nick": "nick2", "nick2": "leaf"},
    )
    assert group(spec, "top").members == (Member(group="leaf", order=1),)


def test_model_that_is_an_alias_of_its_own_group_stays_a_deployment() -> None:
    spec = load_litellm(
        [entry("gpt-4o", "openai/gpt-4o")],
        model_group_alias={"openai/gpt-4o": "gpt-4o"},
    )
    (member,) = group(spec, "gpt-4o").members
    assert member.deployment is not None


# --- group_limits ----------------------------------------------------------------------


def test_group_limits_become_the_groups_limits() -> None:
    spec = load_litellm(
        readme_model_list(),
        group_limits={"fast": {"rpm": 100, "tpm": "2000000/hour", "max_parallel_requests": 4}},
    )
    assert group(spec, "fast").limits == Limits(
        rpm=100, tpm="2000000/hour", max_parallel_requests=4
    )
    assert group(spec, "fast").limits.tpm == (Rate(2_000_000.0, 3600.0),)
    assert not group(spec, "fast/glm-4.7").limits


def test_group_limits_none_for_a_group_means_no_limits() -> None:
    spec = load_litellm([entry("a", "p/a")], group_limits={"a": None})
    assert spec.groups[0].limits == Limits()


# --- deployment ids --------------------------------------------------------------------


def test_generated_ids_are_the_same_when_the_same_config_is_loaded_twice() -> None:
    first = load_litellm(readme_model_list())
    second = load_litellm(readme_model_list())
    assert [d.id for d in first.deployments] == [d.id for d in second.deployments]
    assert first == second


def test_generated_ids_survive_a_restart_with_another_hash_seed() -> None:
    script = (
        "import json, sys\n"
        "from ratetree.config.litellm import load_litellm\n"
        "spec = load_litellm(json.loads(sys.stdin.read()))\n"
        "print(json.dumps([d.id for d in spec.deployments]))\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    ids = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        out = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(readme_model_list()),
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        ids.append(json.loads(out.stdout))
    in_process = [d.id for d in load_litellm(readme_model_list()).deployments]
    assert ids[0] == ids[1] == in_process


def test_generated_ids_do_not_depend_on_key_order() -> None:
    a = load_litellm([{"model_name": "g", "litellm_params": {"model": "p/m", "rpm": 3}}])
    b = load_litellm([{"litellm_params": {"rpm": 3, "model": "p/m"}, "model_name": "g"}])
    assert a.deployments[0].id == b.deployments[0].id


def test_changing_an_entry_changes_only_that_entrys_id() -> None:
    model_list = readme_model_list()
    before = [d.id for d in load_litellm(model_list).deployments]
    model_list[1]["litellm_params"]["rpm"] = 6
    after = [d.id for d in load_litellm(model_list).deployments]

    assert after[0] == before[0]
    assert after[2] == before[2]
    assert after[1] != before[1]


def test_same_entry_under_another_model_name_gets_another_id() -> None:
    spec = load_litellm([entry("a", "p/m"), entry("b", "p/m")])
    assert spec.deployments[0].id != spec.deployments[1].id


def test_identical_entries_are_separate_deployments_with_stable_distinct_ids() -> None:
    model_list = [entry("g", "p/m", rpm=5), entry("g", "p/m", rpm=5), entry("g", "p/m", rpm=5)]
    spec = load_litellm(model_list)
    ids = [d.id for d in spec.deployments]

    assert len(set(ids)) == 3
    assert [m.target for m in group(spec, "g").members] == ids
    assert [d.id for d in load_litellm(copy.deepcopy(model_list)).deployments] == ids


def test_model_info_id_is_used_and_an_integer_id_becomes_a_string() -> None:
    spec = load_litellm(
        [entry("g", "p/a", info={"id": "dep-a"}), entry("g", "p/b", info={"id": 7})]
    )
    assert [d.id for d in spec.deployments] == ["dep-a", "7"]
    assert [m.deployment for m in group(spec, "g").members] == ["dep-a", "7"]


def test_same_model_info_id_in_two_groups_is_one_shared_deployment() -> None:
    spec = load_litellm(
        [
            entry("a", "p/m", info={"id": "shared"}, rpm=10, order=1),
            entry("b", "p/m", info={"id": "shared"}, rpm=10, order=2),
        ]
    )
    assert [d.id for d in spec.deployments] == ["shared"]
    assert spec.deployments[0].limits.rpm == per_minute(10)
    assert group(spec, "a").members == (Member(deployment="shared", order=1),)
    assert group(spec, "b").members == (Member(deployment="shared", order=2),)


def test_model_info_id_makes_an_entry_naming_a_group_a_deployment_with_that_id() -> None:
    # LiteLLM registers a deployment with that id: dropping it would change what it means.
    spec = load_litellm([entry("leaf", "p/a"), entry("top", "leaf", info={"id": "exported-id"})])
    assert group(spec, "top").members == (Member(deployment="exported-id"),)
    assert deployment(spec, "exported-id").label == "leaf"


# --- properties over generated valid configurations ------------------------------------

names = st.sampled_from(["alpha", "beta", "gamma", "delta", "eps", "zeta"])


@st.composite
def valid_configs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Groups listed in a random order; a group may only reference groups later in that
    order, so references never loop."""
    group_names = draw(st.lists(names, min_size=1, max_size=5, unique=True))
    model_list = []
    for position, name in enumerate(group_names):
        later = group_names[position + 1 :]
        references = draw(st.lists(st.sampled_from(later), unique=True)) if later else []
        deployments = st.sampled_from([f"prov/{name}", name, "prov/shared"])
        models = draw(st.lists(deployments, min_size=0 if references else 1, max_size=3))
        models += references
        for model in models:
            params: dict[str, object] = {"model": model}
            params.update(
                draw(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "rpm": st.integers(1, 1000),
                            "tpm": st.sampled_from([1000, "5/second;100/minute"]),
                            "order": st.integers(0, 3) | st.sampled_from(["1", 2.0]),
                            "weight": st.floats(0, 10),
                        },
                    )
                )
            )
            model_list.append({"model_name": name, "litellm_params": params})
    draw(st.randoms()).shuffle(model_list)
    return model_list


@settings(max_examples=150)
@given(valid_configs())
def test_every_valid_entry_becomes_exactly_one_member_of_its_group(
    model_list: list[dict[str, Any]],
) -> None:
    spec = load_litellm(model_list)
    group_names = {e["model_name"] for e in model_list}

    assert sum(len(g.members) for g in spec.groups) == len(model_list)
    assert {g.name for g in spec.groups} == group_names
    references = [m for g in spec.groups for m in g.members if m.group is not None]
    assert len(references) + len(spec.deployments) == len(model_list)
    assert all(m.group in group_names for m in references)
    assert load_litellm(copy.deepcopy(model_list)) == spec
