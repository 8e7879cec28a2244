"""``ratetree check``: the tree a valid config describes, warnings for ambiguous entries,
and exit status 1 with the ConfigError text for an invalid one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clirun import entry, run, write
from examples import readme_model_list
from ratetree import load_litellm


def test_the_readme_example_is_valid_and_prints_every_deployment_with_its_limits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "config.yaml", {"model_list": readme_model_list()})
    result = run(capsys, "check", config)
    assert result.status == 0
    assert result.err == ""
    assert result.out.startswith(f"{config}: valid: 3 groups, 3 deployments, 0 aliases\n")
    spec = load_litellm(readme_model_list())
    for deployment in spec.deployments:
        line = next(x for x in result.out.splitlines() if f"[id {deployment.id}]" in x)
        assert deployment.label is not None
        assert deployment.label in line
        assert deployment.limits.describe() in line


def test_the_tree_nests_sub_groups_under_the_group_that_includes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "config.yaml", {"model_list": readme_model_list()})
    lines = run(capsys, "check", config).out.splitlines()[1:]
    assert lines[0] == "fast [shuffle]"  # the only group no other group includes
    sub = [x for x in lines if x.lstrip("├└│ ─").startswith("fast/")]
    assert [x[:4] for x in sub] == ["├── ", "└── "]
    cerebras = next(x for x in lines if "cerebras/gpt-oss-120b" in x)
    groq = next(x for x in lines if "groq/openai/gpt-oss-120b" in x)
    assert "order 1" in cerebras and "order 2" in groq
    assert lines.index(cerebras) < lines.index(groq)  # tiers in the order selection uses


def test_reference_and_group_limits_and_aliases_are_shown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(
        tmp_path / "c.yaml",
        {
            "model_list": [entry("leaf", "p/x", rpm=10), entry("top", "leaf", order=1, tpm=500)],
            "router_settings": {
                "routing_strategy": "round-robin",
                "model_group_alias": {"t": "top", "h": {"model": "top", "hidden": True}},
            },
        },
    )
    out = run(capsys, "check", config).out
    assert "leaf [round-robin]  order 1, weight 10, tpm 500/60s" in out
    assert "alias t -> top\n" in out
    assert "alias h -> top (hidden)" in out


def test_an_entry_naming_a_group_with_provider_keys_is_a_deployment_and_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_list = [
        entry("leaf", "p/x"),
        entry("top", "leaf", info={"id": "1"}, api_key="sk-1", api_base="http://h"),
    ]
    result = run(capsys, "check", write(tmp_path / "c.yaml", model_list))
    assert result.status == 0
    assert "└── leaf  weight 1  [id 1]" in result.out  # a deployment calling model "leaf"
    warning = result.err.strip()
    assert warning.startswith("warning: ")
    assert ":4: model_list[1] ('top'): model 'leaf' names group 'leaf'" in warning  # 2nd entry
    assert "litellm_params.api_key, litellm_params.api_base, model_info.id" in warning
    assert "so it is a deployment" in warning
    assert "keep only max_parallel_requests, model, order, rpm, tpm, weight" in warning
    assert len(result.err.splitlines()) == 1


def test_an_alias_that_turns_an_entry_into_a_reference_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "model_list": [entry("gpt", "openai/gpt-4o"), entry("top", "gpt-4o")],
        "router_settings": {"model_group_alias": {"gpt-4o": "gpt"}},
    }
    result = run(capsys, "check", write(tmp_path / "c.yaml", config))
    assert result.status == 0
    assert "model 'gpt-4o' is an alias of group 'gpt'" in result.err


def test_an_alias_that_shadows_a_group_makes_the_config_invalid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "model_list": [entry("gpt", "openai/gpt-4o"), entry("top", "p/y")],
        "router_settings": {"model_group_alias": {"top": "gpt"}},
    }
    path = write(tmp_path / "c.yaml", config)
    result = run(capsys, "check", path)
    assert result.status == 1
    assert result.out == ""
    expected = "model_group_alias['top']: alias 'top' shadows group 'top'"
    assert result.err == f"ratetree check: {path}: {expected}\n"


def test_a_group_reached_only_through_a_hidden_alias_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "model_list": [entry("old", "p/x"), entry("new", "p/y")],
        "router_settings": {"model_group_alias": {"legacy": {"model": "old", "hidden": True}}},
    }
    result = run(capsys, "check", write(tmp_path / "c.yaml", config))
    assert result.status == 0
    assert "model_group_alias['legacy']: hidden alias of 'old'" in result.err
    assert "'new'" not in result.err


def test_a_hidden_alias_of_a_group_that_another_group_includes_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = {
        "model_list": [entry("old", "p/x"), entry("top", "old")],
        "router_settings": {"model_group_alias": {"legacy": {"model": "old", "hidden": True}}},
    }
    result = run(capsys, "check", write(tmp_path / "c.yaml", config))
    assert (result.status, result.err) == (0, "")


def test_an_invalid_entry_fails_with_the_config_error_and_the_entrys_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        "model_list:\n"
        "  - model_name: a\n"
        "    litellm_params: {model: p/x}\n"
        "  - model_name: b\n"
        "    litellm_params: {model: p/y, rpm: -1}\n"
    )
    result = run(capsys, "check", str(path))
    assert result.status == 1
    assert result.err == (
        f"ratetree check: {path}:4: model_list[1] (model_name 'b'): rpm -1 must be a finite "
        "number >= 0\n"
    )


def test_a_reference_cycle_is_invalid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_list = [entry("a", "p/x"), entry("b", "p/y"), entry("a", "b"), entry("b", "a")]
    result = run(capsys, "check", write(tmp_path / "c.yaml", model_list))
    assert result.status == 1
    assert "model_list[3] (model_name 'b'): reference to 'a' closes a cycle" in result.err
    assert len(result.err.splitlines()) == 1


def test_check_lists_wildcards_in_the_order_they_are_tried_and_simulate_sends_to_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_list = [
        entry("*", "*"),
        entry("openai/*", "openai/*", rpm=6),
        entry("openai/gpt-4o", "openai/gpt-4o"),
    ]
    config = write(tmp_path / "c.yaml", model_list)
    out = run(capsys, "check", config).out
    assert out.endswith(
        "wildcards, tried in this order for a name no group or alias has:\n  openai/*\n  *\n"
    )
    result = run(capsys, "simulate", config, "--group", "openai/o3", "--format", "json")
    assert result.status == 0, result.err
    admitted = {d["label"]: d["admitted"] for d in json.loads(result.out)["deployments"]}
    assert 30 <= admitted["openai/*"] <= 6 + 30  # a full bucket, then 6 a minute for 5
    assert admitted["*"] == admitted["openai/gpt-4o"] == 0


def test_keys_litellm_weighs_or_reads_elsewhere_are_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_list = [
        entry("g", "p/a", {"weight": 3, "max_parallel_requests": 2}),
        entry("g", "p/b", {"rpm": 10}),
        entry("g", "p/c", {"rpm": 10}, rpm=20),  # litellm_params wins: both weigh by 20
    ]
    result = run(capsys, "check", write(tmp_path / "c.yaml", model_list))
    assert result.status == 0
    lines = [line.split(": model_list", 1)[1] for line in result.err.splitlines()]
    assert lines == [
        "[0]: model_info.weight is ignored (LiteLLM reads weight only from litellm_params, "
        "and so does ratetree); move it there",
        "[0]: model_info.max_parallel_requests is ignored (LiteLLM reads "
        "max_parallel_requests only from litellm_params, and so does ratetree); move it there",
        "[1]: ratetree's shuffle weighs this deployment by model_info.rpm, LiteLLM's "
        "simple-shuffle does not; move it into litellm_params (or set weight) so both pick "
        "alike",
    ]
