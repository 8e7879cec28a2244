"""load_litellm: LiteLLM's routing strategy names, routing_strategy_args and per-token
prices, as the latency-based and cost-based strategies read them."""

from __future__ import annotations

import random

import pytest

from clirun import entry
from ratetree import ConfigError, Scheduler
from ratetree.config.litellm import load_litellm
from ratetree.testing import FakeClock


@pytest.mark.parametrize(
    ("litellm_name", "name"),
    [("latency-based-routing", "latency-based"), ("cost-based-routing", "cost-based")],
)
def test_litellm_names_map_to_the_new_strategies(litellm_name: str, name: str) -> None:
    spec = load_litellm([entry("a", "p/a")], routing_strategy=litellm_name)
    assert spec.groups[0].strategy == name


def test_routing_strategy_args_go_to_latency_based_groups_only() -> None:
    args = {"lowest_latency_buffer": 0.2, "ttl": 3600}
    latency = load_litellm(
        [entry("a", "p/a")], routing_strategy="latency-based-routing", routing_strategy_args=args
    )
    assert dict(latency.groups[0].strategy_args) == args
    # LiteLLM ignores them for the other strategies; so does ratetree.
    shuffle = load_litellm([entry("a", "p/a")], routing_strategy_args=args)
    assert dict(shuffle.groups[0].strategy_args) == {}
    Scheduler(shuffle)


@pytest.mark.parametrize("args", [[("ttl", 1)], {1: 2}, "buffer"])
def test_routing_strategy_args_must_be_a_mapping_with_string_keys(args: object) -> None:
    with pytest.raises(ConfigError, match="routing_strategy_args"):
        load_litellm([entry("a", "p/a")], routing_strategy_args=args)


def test_bad_routing_strategy_args_fail_when_the_scheduler_is_built() -> None:
    spec = load_litellm(
        [entry("a", "p/a")],
        routing_strategy="latency-based-routing",
        routing_strategy_args={"lowest_latency_buffer": "high"},
    )
    with pytest.raises(ConfigError, match="lowest_latency_buffer"):
        Scheduler(spec)


def test_cost_is_read_from_litellm_params_then_model_info() -> None:
    spec = load_litellm(
        [
            entry("g", "p/a", {"id": "a"}, input_cost_per_token=1e-6, output_cost_per_token=2e-6),
            entry("g", "p/b", {"id": "b", "input_cost_per_token": 3e-6}),
            entry(
                "g",
                "p/c",
                {"id": "c", "input_cost_per_token": 9.0, "output_cost_per_token": 1e-6},
                input_cost_per_token=1e-6,
            ),
            entry("g", "p/d", {"id": "d"}),
        ]
    )
    costs = {d.id: d.cost for d in spec.deployments}
    assert costs == pytest.approx({"a": 3e-6, "b": 3e-6, "c": 2e-6, "d": None})


@pytest.mark.parametrize("price", [-1, "cheap", float("nan")])
def test_a_bad_price_is_rejected_naming_the_entry_and_key(price: object) -> None:
    with pytest.raises(ConfigError) as caught:
        load_litellm([entry("g", "p/a", output_cost_per_token=price)])
    message = str(caught.value)
    assert message.startswith("model_list[0] (model_name 'g'): output_cost_per_token ")


def test_cost_based_routing_from_a_model_list_picks_the_cheapest() -> None:
    model_list = [
        entry("g", "p/dear", {"id": "dear"}, input_cost_per_token=5e-6, rpm=1),
        entry("g", "p/cheap", {"id": "cheap"}, input_cost_per_token=1e-6, rpm=1),
    ]
    s = Scheduler.from_litellm(
        model_list, routing_strategy="cost-based-routing", clock=FakeClock(), rng=random.Random(0)
    )
    assert [s.acquire("g").deployment_id for _ in range(2)] == ["cheap", "dear"]
