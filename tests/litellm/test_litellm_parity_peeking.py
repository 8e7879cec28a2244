"""Asking the Router which deployment it would pick (``get_available_deployment`` and its
async twin, no call following) answers as LiteLLM's simple-shuffle does: drawn in
proportion to ``weight``, else ``rpm``, else ``tpm``, every deployment in turn when none
is given; and it holds nothing."""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from litellm_wiring import MESSAGES, Wire, assert_nothing_open, wiring  # noqa: E402


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


def pair(small: dict[str, Any], large: dict[str, Any], *, top: bool = False) -> list[Any]:
    """Two deployments of group ``g``, ids ``small`` and ``large``, with ``small``/``large``
    in their litellm_params (or, ``top``, beside them in the entry as LiteLLM also reads)."""
    out = []
    for name, extra in (("small", small), ("large", large)):
        params = {"model": f"openai/{name}", "api_key": "k", "mock_response": "ok"}
        entry: dict[str, Any] = {"model_name": "g", "model_info": {"id": name}}
        entry["litellm_params"] = params if top else {**params, **extra}
        out.append({**entry, **extra} if top else entry)
    return out


PEEKS = 1000


@pytest.mark.parametrize(
    ("small", "large", "top"),
    [
        ({"rpm": 6}, {"rpm": 1440}, False),
        ({"tpm": 5}, {"tpm": 90}, False),
        ({"tpm": 5}, {"tpm": 90}, True),
        ({"rpm": 5, "tpm": 5}, {"rpm": 90, "tpm": 90}, True),
        ({"weight": 1}, {"weight": 20}, False),
    ],
)
def test_sync_peeks_are_drawn_in_proportion_to_the_weights(
    wire: Wire, small: dict[str, Any], large: dict[str, Any], top: bool
) -> None:
    routing, router = wire(pair(small, large, top=top))
    seen = Counter(
        router.get_available_deployment(model="g", messages=MESSAGES)["model_info"]["id"]
        for _ in range(PEEKS)
    )
    assert seen["large"] > 0.89 * PEEKS
    assert seen["small"] > 0  # the lighter one is still drawn now and then
    assert_nothing_open(routing)


def test_async_peeks_without_weights_reach_every_deployment(wire: Wire) -> None:
    routing, router = wire(pair({}, {}))

    async def peek() -> str:
        picked = await router.select("g", {"messages": MESSAGES})
        return str(picked["model_info"]["id"])

    async def peeks() -> Counter[str]:
        return Counter([await peek() for _ in range(200)])

    seen = asyncio.run(peeks())
    assert set(seen) == {"small", "large"}
    assert min(seen.values()) > 60  # an even draw, not one deployment every time
    assert_nothing_open(routing)


def test_a_peek_skips_a_deployment_the_tree_cannot_admit_whatever_its_weight(
    wire: Wire,
) -> None:
    routing, router = wire(pair({"rpm": 1}, {"rpm": 1000, "max_parallel_requests": 1}))
    router.completion(model="small", messages=MESSAGES)  # spends small's one request a minute
    seen = {router.get_available_deployment(model="g")["model_info"]["id"] for _ in range(50)}
    assert seen == {"large"}
    assert_nothing_open(routing)
