"""load_litellm reads entries as LiteLLM does: which entries are references, numeric
strings, ``os.environ/NAME``, limits beside litellm_params, and per-group strategies."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clirun import entry
from ratetree.config.litellm import load_litellm
from ratetree.config.values import as_number, non_routing_keys
from ratetree.core.specs import Group, Limits, Member, Rate, TreeSpec
from ratetree.errors import ConfigError


def group(spec: TreeSpec, name: str) -> Group:
    (found,) = [g for g in spec.groups if g.name == name]
    return found


def limits_of(spec: TreeSpec, index: int = 0) -> Limits:
    return spec.deployments[index].limits


# --- references only where the config means them ---------------------------------------


def test_entry_naming_a_group_with_provider_parameters_is_a_deployment_keeping_its_id() -> None:
    model_list = [
        {
            "model_name": "gpt-3.5-turbo",
            "litellm_params": {"model": "azure/chatgpt-v-2", "api_key": "os.environ/AZURE_KEY"},
        },
        {
            "model_name": "end-user-test",
            "litellm_params": {"model": "gpt-3.5-turbo", "region_name": "eu"},
            "model_info": {"id": "1"},
        },
    ]
    spec = load_litellm(model_list, environ={})
    assert group(spec, "end-user-test").members == (Member(deployment="1"),)
    assert [d.id for d in spec.deployments][1] == "1"
    assert spec.deployments[1].payload is model_list[1]


@pytest.mark.parametrize(
    "extra",
    [
        {"region_name": "eu"},
        {"api_key": "sk-x"},
        {"api_base": "http://h"},
        {"custom_llm_provider": "openai"},
        {"mock_response": "hi"},
        {"temperature": 0.2},
    ],
)
def test_any_provider_parameter_makes_the_entry_a_deployment(extra: dict[str, Any]) -> None:
    spec = load_litellm([entry("leaf", "p/a"), entry("top", "leaf", order=1, **extra)])
    (member,) = group(spec, "top").members
    assert member.deployment is not None and member.order == 1


@pytest.mark.parametrize(
    "routing", [{}, {"rpm": 5}, {"tpm": 100, "order": 2}, {"weight": 3, "max_parallel_requests": 2}]
)
def test_an_entry_with_only_routing_keys_is_a_reference(routing: dict[str, Any]) -> None:
    spec = load_litellm([entry("leaf", "p/a"), entry("top", "leaf", **routing)])
    (member,) = group(spec, "top").members
    assert member.group == "leaf"


def test_non_routing_keys_names_each_place() -> None:
    raw = {
        "model_name": "top",
        "litellm_params": {"model": "leaf", "rpm": 1, "api_key": "k"},
        "model_info": {"id": "x", "rpm": 2},
        "extra": 1,
    }
    assert non_routing_keys(raw) == ["'extra'", "litellm_params.api_key", "model_info.id"]
    assert non_routing_keys({"model_name": "t", "litellm_params": {"model": "l"}}) == []


# --- values as LiteLLM reads them ------------------------------------------------------


def test_numeric_strings_are_numbers() -> None:
    spec = load_litellm(
        [entry("g", "p/a", rpm="30", tpm=" 1000 ", max_parallel_requests="4", order="1")]
    )
    assert limits_of(spec) == Limits(rpm=30, tpm=1000, max_parallel_requests=4)
    assert group(spec, "g").members[0].order == 1


@given(st.integers(1, 10**9))
def test_an_integer_written_as_a_string_reads_as_the_integer(n: int) -> None:
    as_text = load_litellm([entry("g", "p/a", rpm=str(n), tpm=str(n))])
    as_int = load_litellm([entry("g", "p/a", rpm=n, tpm=n)])
    assert limits_of(as_text) == limits_of(as_int)


@pytest.mark.parametrize("text", ["30/minute", "nan", "inf", "lots", ""])
def test_non_numeric_strings_stay_strings(text: str) -> None:
    assert as_number(text) == text


def test_rate_strings_still_read_as_rates() -> None:
    spec = load_litellm([entry("g", "p/a", rpm="5/second")])
    assert limits_of(spec).rpm == (Rate(5.0, 1.0),)


def test_a_string_weight_is_refused_as_litellm_refuses_it() -> None:
    with pytest.raises(ConfigError, match=r"model_list\[0\] .*weight '2' is a string"):
        load_litellm([entry("g", "p/a", weight="2")])


def test_environment_values_are_read_from_the_given_mapping() -> None:
    environ = {"RPM": "12", "TPM": "5000", "MODEL": "p/real", "STRATEGY": "least-busy"}
    spec = load_litellm(
        [entry("g", "os.environ/MODEL", rpm="os.environ/RPM", info={"tpm": "os.environ/TPM"})],
        routing_strategy="os.environ/STRATEGY",
        environ=environ,
    )
    assert limits_of(spec) == Limits(rpm=12, tpm=5000)
    assert spec.deployments[0].label == "p/real"
    assert group(spec, "g").strategy == "least-busy"


def test_a_missing_environment_variable_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError) as caught:
        load_litellm([entry("g", "p/a", rpm="os.environ/NO_SUCH_RPM")], environ={})
    assert str(caught.value) == (
        "model_list[0] (model_name 'g'): litellm_params.rpm 'os.environ/NO_SUCH_RPM': "
        "environment variable 'NO_SUCH_RPM' is not set"
    )


def test_provider_secrets_are_not_read() -> None:
    # api_key belongs to LiteLLM: an unset variable there is not ratetree's to judge.
    spec = load_litellm([entry("g", "p/a", api_key="os.environ/UNSET_KEY")], environ={})
    assert len(spec.deployments) == 1


def test_limits_are_read_top_level_then_litellm_params_then_model_info() -> None:
    top = {**entry("g", "p/a", info={"rpm": 3, "tpm": 30}, rpm=2), "rpm": 1}
    spec = load_litellm([top])
    assert limits_of(spec) == Limits(rpm=1, tpm=30)
    spec = load_litellm([entry("g", "p/a", info={"rpm": 3}, rpm=2)])
    assert limits_of(spec) == Limits(rpm=2)
    spec = load_litellm([{**entry("g", "p/a"), "tpm": "700"}])
    assert limits_of(spec) == Limits(tpm=700)


def test_top_level_limits_on_a_reference_limit_the_reference() -> None:
    spec = load_litellm([entry("leaf", "p/a"), {**entry("top", "leaf"), "rpm": 9}])
    assert group(spec, "top").members == (Member(group="leaf", limits=Limits(rpm=9)),)


# --- per-group settings ----------------------------------------------------------------


def test_group_strategies_override_the_router_default_per_group() -> None:
    spec = load_litellm(
        [entry("a", "p/a"), entry("b", "p/b")],
        routing_strategy="simple-shuffle",
        group_strategies={"b": "least-busy"},
    )
    assert [g.strategy for g in spec.groups] == ["shuffle", "least-busy"]


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"nope": "least-busy"}, "group_strategies['nope']: 'nope' is not a model_name"),
        ({"a": "fastest"}, "group_strategies['a']: routing_strategy 'fastest' is not supported"),
        (["a"], "group_strategies ['a'] must be a mapping"),
    ],
)
def test_bad_group_strategies_are_refused_naming_the_group(settings: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_litellm([entry("a", "p/a")], group_strategies=settings)
    assert str(caught.value).startswith(message)


def test_group_limits_read_numeric_strings_and_environment() -> None:
    spec = load_litellm(
        [entry("a", "p/a")],
        group_limits={"a": {"rpm": "os.environ/A_RPM", "tpm": "100"}},
        environ={"A_RPM": "7"},
    )
    assert spec.groups[0].limits == Limits(rpm=7, tpm=100)
