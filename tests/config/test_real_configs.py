"""Real-shaped configs (tests/data/real_configs): check, simulate and flatten succeed on
each, or refuse it with the one-line reason in the table below; every flattened config
loads in a real litellm.Router."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clirun import run
from plain_router import deployment_ids, plain_router

DATA = Path(__file__).parent.parent / "data" / "real_configs"
# Only the limits ratetree reads need a value; keys and URLs stay LiteLLM's business.
ENVIRON = {"AZURE_GPT4O_RPM": "120", "OPENAI_GPT4O_RPM": "90"}

OK = None
#: file -> None when every command succeeds, else the reason all three refuse it for.
EXPECTED: dict[str, str | None] = {
    "litellm_examples/_health_check_test_config.yaml": OK,
    "litellm_examples/aliases_config.yaml": OK,
    "litellm_examples/azure_config.yaml": OK,
    "litellm_examples/enterprise_config.yaml": OK,
    "litellm_examples/load_balancer.yaml": OK,
    "litellm_examples/model_config.yaml": OK,
    "litellm_examples/multi_instance_simple_config.yaml": OK,
    "litellm_examples/proxy_config.yaml": OK,
    "litellm_examples/simple_config.yaml": OK,
    "litellm_examples/wildcard_config.yaml": OK,
    "wildcards.yaml": OK,
    "includes/config.yaml": OK,
    "env_values.yaml": OK,
    "usage_based_no_limits.yaml": OK,
    "groups_of_groups.yaml": OK,
    "large_orders.yaml": OK,
    # LiteLLM would refuse to start too: the proxy raises FileNotFoundError.
    "missing_include.yaml": "include 'models_that_are_not_here.yaml': no such file",
    "latency_based.yaml": OK,
    "cost_based.yaml": OK,
}
INCLUDED_ONLY = {"includes/models/openai.yaml", "includes/models/anthropic.yaml"}
INCLUDED_ONLY |= {"includes/models/shared.yaml"}


def test_the_table_names_every_config_in_the_corpus() -> None:
    found = {str(p.relative_to(DATA)) for p in DATA.rglob("*.yaml")}
    assert found - INCLUDED_ONLY == set(EXPECTED)
    assert len([f for f, reason in EXPECTED.items() if reason is OK]) >= 10


@pytest.mark.parametrize("name", [n for n, reason in EXPECTED.items() if reason is not OK])
def test_refused_configs_are_refused_by_every_command_in_one_line(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    reason = EXPECTED[name]
    assert reason is not None
    path = str(DATA / name)
    for command in (["check"], ["simulate", "--duration", "60"], ["flatten"]):
        result = run(capsys, command[0], path, *command[1:], environ=ENVIRON)
        assert result.status == 1
        assert result.out == ""
        assert result.err.startswith(f"ratetree {command[0]}: {path}")
        assert reason in result.err
        assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize("name", [n for n, reason in EXPECTED.items() if reason is OK])
def test_check_simulate_and_flatten_succeed_and_the_flat_config_loads_in_a_router(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(DATA / name)
    check = run(capsys, "check", path, environ=ENVIRON)
    assert check.status == 0, check.err
    assert check.out.startswith(f"{path}: valid: ")

    simulated = run(capsys, "simulate", path, "--duration", "60", "--rps", "5", environ=ENVIRON)
    assert simulated.status == 0, simulated.err
    assert "admitted per minute" in simulated.out

    flat = run(capsys, "flatten", path, environ=ENVIRON)
    assert flat.status == 0, flat.err
    document = yaml.safe_load(flat.out)
    with plain_router(document["model_list"], document.get("router_settings"), ENVIRON) as router:
        assert len(deployment_ids(router)) == len(document["model_list"])


def test_the_shapes_read_as_litellm_reads_them(capsys: pytest.CaptureFixture[str]) -> None:
    """A few facts from the corpus that a silent misreading would change."""
    out = run(capsys, "check", str(DATA / "groups_of_groups.yaml"), environ=ENVIRON).out
    assert "end-user-test [shuffle]\n└── fast  weight 1  [id 1]" in out  # not a reference
    assert "fast [least-busy]  (group: rpm 20/60s)" in out
    out = run(capsys, "check", str(DATA / "env_values.yaml"), environ=ENVIRON).out
    assert "azure/gpt-4o  order 1, weight 120, rpm 120/60s, tpm 150000/60s, max_parallel 8" in out
    assert "openai/gpt-4o  order 2, weight 90, rpm 90/60s" in out
    out = run(capsys, "check", str(DATA / "litellm_examples/load_balancer.yaml")).out
    assert out.count("rpm 3/60s, tpm 20000/60s") == 2  # limits beside litellm_params
    out = run(capsys, "check", str(DATA / "large_orders.yaml")).out
    assert out.startswith(f"{DATA / 'large_orders.yaml'}: valid: 2 groups, 160 deployments")
