"""``ratetree flatten``: a flat model_list with one copy of a deployment per path, which
plain LiteLLM (and ratetree) loads with no references left."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from clirun import entry, run, write
from examples import readme_model_list
from plain_router import deployment_ids, deployments, plain_router
from ratetree import Scheduler, TreeSpec, load_litellm
from ratetree.cli.flatten import flat_model_list


def paths_per_group(spec: TreeSpec) -> dict[str, Counter[str]]:
    """For each group, the labels of the deployments at the end of each of its paths."""
    groups = {g.name: g for g in spec.groups}
    labels = {d.id: d.label for d in spec.deployments if d.label is not None}

    def walk(name: str) -> Counter[str]:
        found: Counter[str] = Counter()
        for member in groups[name].members:
            found += walk(member.target) if member.group else Counter([labels[member.target]])
        return found

    return {name: walk(name) for name in groups}


NESTED = {
    "model_list": [
        entry("a", "p/x", {"id": "x"}, rpm=10),
        entry("b", "p/x", {"id": "x"}, rpm=10),  # the same deployment, shared by id
        entry("b", "p/y", rpm=20, order=1),
        entry("mid", "a", order=2),
        entry("mid", "b", order=1),
        entry("top", "mid", tpm=1000),
        entry("top", "p/z", rpm=5),
    ],
    "router_settings": {"routing_strategy": "least-busy", "model_group_alias": {"t": "top"}},
    "litellm_settings": {"drop_params": True},
}


@pytest.mark.parametrize("document", [{"model_list": readme_model_list()}, NESTED])
def test_the_flat_list_loads_without_references_one_copy_per_path(
    document: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    composed = load_litellm(document["model_list"])
    result = run(capsys, "flatten", write(tmp_path / "c.yaml", document))
    assert result.status == 0
    flat_document = yaml.safe_load(result.out)
    flat = load_litellm(flat_document["model_list"])
    assert all(m.deployment is not None for g in flat.groups for m in g.members)
    expected = paths_per_group(composed)
    assert paths_per_group(flat) == expected
    assert len(flat.deployments) == sum(sum(c.values()) for c in expected.values())
    Scheduler.from_litellm(flat_document["model_list"])  # and the scheduler takes it


def test_everything_but_the_model_list_is_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = yaml.safe_load(run(capsys, "flatten", write(tmp_path / "c.yaml", NESTED)).out)
    assert list(flat) == list(NESTED)
    assert {k: v for k, v in flat.items() if k != "model_list"} == {
        k: v for k, v in NESTED.items() if k != "model_list"
    }


def test_a_bare_model_list_flattens_to_a_bare_model_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = run(capsys, "flatten", write(tmp_path / "c.yaml", readme_model_list())).out
    assert isinstance(yaml.safe_load(out), list)


def test_explicit_ids_stay_unique_and_stay_on_the_group_that_lists_the_deployment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = yaml.safe_load(run(capsys, "flatten", write(tmp_path / "c.yaml", NESTED)).out)
    ids = [(e["model_name"], e.get("model_info", {}).get("id")) for e in flat["model_list"]]
    explicit = [i for _, i in ids if i is not None]
    assert len(explicit) == len(set(explicit))
    assert ("a", "x") in ids
    assert ("b", "x@b") in ids  # b lists the same deployment, after a
    assert ("top", "x@top") in ids and ("top", "x@top#2") in ids  # two paths: via a and b


def test_orders_rank_along_the_path_outermost_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flat = yaml.safe_load(run(capsys, "flatten", write(tmp_path / "c.yaml", NESTED)).out)
    top = [
        (e["litellm_params"]["model"], e["litellm_params"].get("order"))
        for e in flat["model_list"]
        if e["model_name"] == "top"
    ]
    # mid ranks b (order 1: its y has order 1, its x none) before a (order 2); z is unordered
    assert top == [("p/x", 3), ("p/x", 2), ("p/y", 1), ("p/z", None)]
    b = [e["litellm_params"].get("order") for e in flat["model_list"] if e["model_name"] == "b"]
    assert b == [None, 1]  # a group without references keeps its own orders


def test_a_warning_says_each_copy_gets_its_own_budget_and_names_dropped_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "flatten", write(tmp_path / "c.yaml", NESTED))
    lines = result.err.splitlines()
    copies = sum(
        sum(c.values()) for c in paths_per_group(load_litellm(NESTED["model_list"])).values()
    )
    assert copies == 10  # of which 'p/z' has one copy, the other 9 are of p/x and p/y
    assert lines[0] == (
        "warning: each of the 9 copies gets its own rpm/tpm budget, so a provider reached "
        "through several groups can get more than its limits; order is ranked along each "
        "path, not inside each sub-group"
    )
    assert lines[1:] == [
        "warning: the flat config has no place for the limits of reference 'top' -> 'mid' "
        "(tpm 1000/60s)"
    ]


def test_output_goes_to_a_file_with_o(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(tmp_path / "c.yaml", NESTED)
    stdout = run(capsys, "flatten", config).out
    target = tmp_path / "flat.yaml"
    result = run(capsys, "flatten", config, "-o", str(target))
    assert (result.status, result.out) == (0, "")
    assert target.read_text() == stdout


@st.composite
def composed_model_lists(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Groups g0..gn, each with deployments and references to groups before it (so no
    cycles), random orders, and some explicit ids shared between groups."""
    model_list: list[dict[str, Any]] = []
    for g in range(draw(st.integers(1, 5))):
        name = f"g{g}"
        targets = draw(st.lists(st.integers(0, g - 1), unique=True, max_size=3)) if g else []
        for t in targets:
            model_list.append(entry(name, f"g{t}", order=draw(st.none() | st.integers(1, 3))))
        for d in range(draw(st.integers(0 if targets else 1, 3))):
            info = {"id": f"shared{d}"} if draw(st.booleans()) else None
            order = draw(st.none() | st.integers(1, 3))
            model = f"p/m{d}" if info else f"p/{name}-{d}"
            model_list.append(
                entry(name, model, info, rpm=10, **({"order": order} if order else {}))
            )
    return model_list


@given(composed_model_lists())
def test_any_composed_list_flattens_to_one_copy_per_path(model_list: list[dict[str, Any]]) -> None:
    composed = load_litellm(model_list)
    flat_list = flat_model_list(composed)
    flat = load_litellm(flat_list)
    assert all(m.deployment is not None for g in flat.groups for m in g.members)
    expected = paths_per_group(composed)
    assert paths_per_group(flat) == expected
    assert len(flat.deployments) == sum(sum(c.values()) for c in expected.values())


def test_nothing_copied_means_no_budget_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", [entry("a", "p/a", rpm=5), entry("b", "p/b")])
    result = run(capsys, "flatten", config)
    assert result.status == 0
    assert result.err == ""


def flat_params(tmp_path: Path, capsys: pytest.CaptureFixture[str], model_list: object) -> Any:
    result = run(capsys, "flatten", write(tmp_path / "c.yaml", model_list))
    assert result.status == 0, result.err
    return [e["litellm_params"] for e in yaml.safe_load(result.out)], result.err


def test_limits_become_integers_in_litellm_params(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_list = [
        entry("a", "p/a", rpm="5/second", tpm="30", max_parallel_requests="4"),
        {**entry("b", "p/b", {"rpm": 9, "tpm": "60000/hour"}), "rpm": 7},
    ]
    params, err = flat_params(tmp_path, capsys, model_list)
    assert params == [
        {"model": "p/a", "rpm": 300, "tpm": 30, "max_parallel_requests": 4},
        {"model": "p/b", "rpm": 7, "tpm": 1000},
    ]
    assert err == ""


def test_a_rate_no_integer_says_is_rounded_down_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_list = [
        entry("a", "p/a", {"id": "a"}, rpm="100/hour"),
        entry("b", "p/b", {"id": "b"}, rpm="5/second;100/minute", tpm=2.5),
    ]
    params, err = flat_params(tmp_path, capsys, model_list)
    assert [(p["rpm"], p.get("tpm")) for p in params] == [(1, None), (100, 2)]
    assert err.splitlines() == [
        "warning: deployment 'p/a' [id a]: rpm 100/3600s is no whole number per minute; "
        "the flat config says rpm 1",
        "warning: deployment 'p/b' [id b]: rpm 5/1s; 100/60s is no whole number per minute; "
        "the flat config says rpm 100",
        "warning: deployment 'p/b' [id b]: tpm 2.5/60s is no whole number per minute; "
        "the flat config says tpm 2",
    ]


def test_the_ratetree_section_is_dropped_and_what_it_said_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        "model_list": [entry("a", "p/a"), entry("b", "p/b")],
        "router_settings": {"routing_strategy": "simple-shuffle"},
        "ratetree": {"group_limits": {"a": {"rpm": 5}}, "group_strategies": {"b": "least-busy"}},
    }
    result = run(capsys, "flatten", write(tmp_path / "c.yaml", document))
    assert "ratetree" not in yaml.safe_load(result.out)
    assert result.err.splitlines() == [
        "warning: the flat config has no place for the limits of group 'a' (rpm 5/60s)",
        "warning: group 'b' uses routing_strategy 'least-busy'; the flat config has one for "
        "every group (simple-shuffle)",
    ]


def test_flattened_configs_load_in_a_real_litellm_router(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = {
        **NESTED,
        "model_list": [
            *NESTED["model_list"],
            entry("c", "p/c", rpm="5/second", max_parallel_requests="4"),
            entry("top", "c"),
        ],
    }
    result = run(capsys, "flatten", write(tmp_path / "c.yaml", document))
    flat = yaml.safe_load(result.out)
    with plain_router(flat["model_list"], flat["router_settings"]) as router:
        assert len(deployment_ids(router)) == len(flat["model_list"])
        rpms = sorted(d["litellm_params"].get("rpm") or 0 for d in deployments(router, "c"))
    assert rpms == [300]
