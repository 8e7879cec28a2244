"""LiteLLM's Router picking from the same deployments, given flat under one model name.

``benchmarks/run.py`` runs each case in a pytest process of its own, because LiteLLM keeps
callback state in module globals, so one Router could slow down (or speed up) the next.
Offline: the bundled model cost map, a fake api_key, and the pick never calls a provider.
Each round awaits ``PICKS[size]`` picks inside one ``run_until_complete``, so the event
loop's entry cost is spread over them; ``extra_info["picks"]`` says how many, and the
report divides by it. A pick at 10,000 deployments takes most of a second here, so the
large sizes get few rounds (and building that Router takes about a minute).
"""

from __future__ import annotations

import asyncio
import os
from importlib.metadata import version
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

import litellm
from trees import ROOT, SIZES, litellm_model_list

ROUTER_STRATEGIES = ("simple-shuffle", "usage-based-routing-v2")
QUICK = bool(os.environ.get("RATETREE_BENCH_QUICK"))
# size -> (picks per round, rounds): about a second of picking per case, at most a few.
PLAN = {10: (20, 30), 100: (10, 30), 1000: (1, 30), 10000: (1, 5)}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("routing_strategy", ROUTER_STRATEGIES)
def test_router_pick(benchmark: Any, routing_strategy: str, size: int) -> None:
    router = litellm.Router(model_list=litellm_model_list(size), routing_strategy=routing_strategy)
    picks, rounds = PLAN[size]
    if QUICK:
        rounds = min(rounds, 3)
    loop = asyncio.new_event_loop()

    async def pick_some() -> None:
        for _ in range(picks):
            # 1.110's Router takes request_kwargs positionally after the model name.
            deployment = await router.async_get_available_deployment(
                model=ROOT, request_kwargs={}, messages=MESSAGES
            )
            assert deployment is not None

    benchmark.group = f"litellm {size}"
    benchmark.extra_info.update(
        case="litellm",
        size=size,
        strategy=routing_strategy,
        fullness="ample",
        picks=picks,
        litellm_version=version("litellm"),
    )
    try:
        # The first picks fill LiteLLM's caches (usage-based: ~0.1 s); not timed.
        benchmark.pedantic(
            lambda: loop.run_until_complete(pick_some()), rounds=rounds, warmup_rounds=2
        )
    finally:
        loop.close()
