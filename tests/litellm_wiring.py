"""Shared wiring for the tests that drive a real ``litellm.Router`` through ratetree.

Import it after ``pytest.importorskip("litellm")``. ``wire`` builds a RatetreeRouting and a
Router the README's way and, after the test, checks that nothing was left open: no lease in
the routing, nothing in flight in the scheduler.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
import random
from collections.abc import Callable, Iterator
from typing import Any

from examples import readme_model_list
from litellm import Router
from ratetree.integrations.litellm import RatetreeRouting

MESSAGES = [{"role": "user", "content": "hi"}]
# One request at a time: LiteLLM and ratetree read max_parallel_requests from litellm_params.
ONE: list[dict[str, Any]] = [
    {
        "model_name": "one",
        "litellm_params": {
            "model": "openai/one",
            "api_key": "k",
            "mock_response": "ok",
            "max_parallel_requests": 1,
        },
    }
]
Wire = Callable[..., tuple[RatetreeRouting, Any]]


def one() -> list[dict[str, Any]]:
    return [{**entry, "litellm_params": dict(entry["litellm_params"])} for entry in ONE]


def example(**extra_params: Any) -> list[dict[str, Any]]:
    """The README example with a fake key on every deployment (and ``extra_params``)."""
    model_list = readme_model_list()
    groups = {entry["model_name"] for entry in model_list}
    for entry in model_list:
        if entry["litellm_params"]["model"] not in groups:  # not a reference
            entry["litellm_params"].update(api_key="fake-key", **extra_params)
    return model_list


def ids_by_model(routing: RatetreeRouting) -> dict[str, str]:
    """Provider model string -> the deployment id the Router reports as ``model_id``."""
    return {e["litellm_params"]["model"]: e["model_info"]["id"] for e in routing.model_list}


def in_flight(routing: RatetreeRouting) -> int:
    return sum(d.in_flight for d in routing.scheduler.snapshot().deployments.values())


def assert_nothing_open(routing: RatetreeRouting) -> None:
    assert routing.open_leases == 0
    assert in_flight(routing) == 0


async def settled(routing: RatetreeRouting) -> None:
    """Wait (5 s at most) until every lease is settled: LiteLLM reports some outcomes from
    background tasks (async logging)."""
    for _ in range(500):
        if routing.open_leases == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"{routing.open_leases} leases still open")


def wiring() -> Iterator[Wire]:
    """The body of a test module's ``wire`` fixture (``yield from wiring()``)."""
    made: list[RatetreeRouting] = []

    def make(
        model_list: list[dict[str, Any]] | None = None,
        *,
        routing_options: dict[str, Any] | None = None,
        **router_options: Any,
    ) -> tuple[RatetreeRouting, Any]:
        options = {"rng": random.Random(7), **(routing_options or {})}
        routing = RatetreeRouting.from_model_list(
            one() if model_list is None else model_list, **options
        )
        router_options.setdefault("num_retries", 0)
        router = Router(
            model_list=routing.model_list,
            model_group_alias=routing.model_group_alias,
            retry_after=0,
            **router_options,
        )
        routing.attach(router)
        made.append(routing)
        return routing, router

    yield make
    for routing in made:
        assert_nothing_open(routing)
    for routing in made:
        routing.detach()
