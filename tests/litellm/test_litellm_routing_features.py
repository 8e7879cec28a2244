"""What the Router integration adds for LiteLLM's strategies and names, on a real Router:
each attempt's latency fed to the latency-based strategy, LiteLLM's cost map for
cost-based routing, and wildcard model_names."""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
from collections import Counter

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

from litellm import Router  # noqa: E402
from ratetree.integrations.litellm import RatetreeRouting  # noqa: E402

HI = [{"role": "user", "content": "hi"}]


def _deployment(name: str, delay: float, group: str = "g") -> dict[str, object]:
    params: dict[str, object] = {"model": f"openai/{name}", "api_key": "k", "mock_response": name}
    if delay:
        params["mock_delay"] = delay
    return {"model_name": group, "litellm_params": params, "model_info": {"id": name}}


def test_the_faster_deployment_wins_once_both_were_measured() -> None:
    routing = RatetreeRouting.from_model_list(
        [_deployment("slow", 0.3), _deployment("quick", 0.0), _deployment("w", 0.0, "warm")],
        routing_strategy="latency-based-routing",
    )
    router = Router(
        model_list=routing.model_list, model_group_alias=routing.model_group_alias, num_retries=0
    )
    routing.attach(router)
    served: Counter[str] = Counter()

    async def run() -> None:
        # LiteLLM's first call in a process is slow (lazy imports): not the one measured.
        await router.acompletion(model="warm", messages=HI)
        for _ in range(8):
            response = await router.acompletion(model="g", messages=HI)
            served[response._hidden_params["model_id"]] += 1

    try:
        asyncio.run(run())
    finally:
        routing.detach()
    # Unmeasured deployments are tried first, so each serves once; then the measured
    # averages decide: every later request goes to the quick one.
    assert served == {"slow": 1, "quick": 7}
    assert routing.open_leases == 0


def test_cost_based_routing_prices_unpriced_deployments_from_litellms_cost_map() -> None:
    # gpt-4o-mini costs less per token than gpt-4o in LiteLLM's bundled map; neither entry
    # names a price, so only the map can tell them apart.
    model_list = [
        {
            "model_name": "g",
            "litellm_params": {"model": f"openai/{model}", "api_key": "k", "mock_response": "x"},
            "model_info": {"id": model},
        }
        for model in ("gpt-4o", "gpt-4o-mini")
    ]
    routing = RatetreeRouting.from_model_list(model_list, routing_strategy="cost-based-routing")
    costs = {d.id: d.cost for d in routing.scheduler.spec.deployments}
    assert costs["gpt-4o-mini"] is not None and costs["gpt-4o"] is not None
    assert costs["gpt-4o-mini"] < costs["gpt-4o"]
    picks = {routing.scheduler.acquire("g").deployment_id for _ in range(5)}
    assert picks == {"gpt-4o-mini"}
    assert model_list[0]["model_info"] == {"id": "gpt-4o"}  # the caller's list is unchanged


def test_a_wildcard_group_serves_matching_names_sharing_its_limits() -> None:
    model_list = [
        {
            "model_name": "openai/*",
            "litellm_params": {"model": "openai/*", "api_key": "k", "mock_response": "hi"},
            "model_info": {"id": "any-openai", "rpm": 2},
        },
        {
            "model_name": "openai/gpt-4o",  # an exact group beats the pattern
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "k", "mock_response": "hi"},
            "model_info": {"id": "exact"},
        },
    ]
    routing = RatetreeRouting.from_model_list(model_list)
    router = Router(
        model_list=routing.model_list, model_group_alias=routing.model_group_alias, num_retries=0
    )
    routing.attach(router)

    async def run() -> list[str]:
        served = []
        for name in ["openai/gpt-4o-mini", "openai/o3", "openai/gpt-4o"]:
            response = await router.acompletion(model=name, messages=HI)
            served.append(f"{response._hidden_params['model_id']} {response.model}")
        with pytest.raises(litellm.RateLimitError):  # rpm 2 is shared by every matching name
            await router.acompletion(model="openai/gpt-4.1", messages=HI)
        return served

    try:
        served = asyncio.run(run())
    finally:
        routing.detach()
    # The wildcard deployment calls the model each request named.
    assert served == ["any-openai gpt-4o-mini", "any-openai o3", "exact gpt-4o"]
    assert routing.open_leases == 0
