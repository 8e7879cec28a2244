"""Failover parity: the same failure scenarios through a plain ``litellm.Router`` and through
one routed by ratetree, on the README example. ratetree must serve at least as many
requests in every scenario."""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from litellm import Router  # noqa: E402
from litellm_wiring import Wire, example, wiring  # noqa: E402


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


CEREBRAS = "cerebras/gpt-oss-120b"  # order 1 of fast/GPT-OSS-120b
GROQ = "groq/openai/gpt-oss-120b"  # order 2
GLM = "cerebras/zai-glm-4.7"
REQUESTS = 5  # cerebras admits 5 a minute: the limits never bind

# (failing deployment, its mocked failure, requested group, Router options)
SCENARIOS = {
    "order-1 answers 500, retries": (CEREBRAS, "litellm.InternalServerError", "oss", 2, None),
    "order-1 answers 429, retries": (CEREBRAS, "litellm.RateLimitError", "oss", 2, None),
    "order-1 cannot connect, retries": (CEREBRAS, "litellm.APIConnectionError", "oss", 2, None),
    "order-2 answers 500, retries": (GROQ, "litellm.InternalServerError", "oss", 2, None),
    "order-1 answers 500, fallback only": (
        CEREBRAS,
        "litellm.InternalServerError",
        "oss",
        0,
        "glm",
    ),
    "glm answers 500, fallback": (GLM, "litellm.InternalServerError", "glm", 0, "oss"),
}
GROUPS = {"oss": "fast/GPT-OSS-120b", "glm": "fast/glm-4.7"}


def failing_list(model: str, failure: str) -> list[dict[str, Any]]:
    model_list = example(mock_response="ok")
    for entry in model_list:
        if entry["litellm_params"]["model"] == model:
            entry["litellm_params"]["mock_response"] = failure
    return model_list


def served(router: Any, group: str) -> int:
    async def run() -> int:
        count = 0
        for _ in range(REQUESTS):
            try:
                await router.acompletion(model=group, messages=[{"role": "user", "content": "hi"}])
            except Exception:  # a request the Router could not serve
                continue
            count += 1
        return count

    return asyncio.run(run())


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_ratetree_serves_at_least_what_a_plain_router_serves(scenario: str, wire: Wire) -> None:
    model, failure, group, retries, fallback = SCENARIOS[scenario]
    options: dict[str, Any] = {"num_retries": retries}
    if fallback is not None:
        options["fallbacks"] = [{GROUPS[group]: [GROUPS[fallback]]}]
    plain = Router(
        model_list=[e for e in failing_list(model, failure) if e["model_name"] != "fast"],
        retry_after=0,
        **options,
    )
    plain_served = served(plain, GROUPS[group])
    _, router = wire(failing_list(model, failure), **options)
    ours = served(router, GROUPS[group])
    assert ours >= plain_served, f"{scenario}: ratetree {ours}, plain Router {plain_served}"
    assert ours == REQUESTS  # another deployment could always serve


# The Router's own failover settings, and the sync path, with order 1 of fast/GPT-OSS-120b
# answering 500: (Router options, ratetree options, sync calls).
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any], bool]] = {
    "weighted failover, no retries": (
        {"enable_weighted_failover": True, "num_retries": 0},
        {},
        False,
    ),
    "allowed_fails 1, retries": (
        {"allowed_fails": 1, "num_retries": 2},
        {"allowed_fails": 1},
        False,
    ),
    "sync calls, retries": ({"num_retries": 2}, {}, True),
}


def served_sync(router: Any, group: str) -> int:
    count = 0
    for _ in range(REQUESTS):
        try:
            router.completion(model=group, messages=[{"role": "user", "content": "hi"}])
        except Exception:  # a request the Router could not serve
            continue
        count += 1
    return count


@pytest.mark.parametrize("setting", SETTINGS)
def test_failover_settings_serve_at_least_what_a_plain_router_serves(
    setting: str, wire: Wire
) -> None:
    router_options, routing_options, sync = SETTINGS[setting]
    failing = failing_list(CEREBRAS, "litellm.InternalServerError")
    count = served_sync if sync else served
    plain = Router(
        model_list=[e for e in failing if e["model_name"] != "fast"],
        retry_after=0,
        **router_options,
    )
    plain_served = count(plain, GROUPS["oss"])
    _, router = wire(failing, routing_options=routing_options, **router_options)
    ours = count(router, GROUPS["oss"])
    assert ours >= plain_served, f"{setting}: ratetree {ours}, plain Router {plain_served}"
    assert ours == REQUESTS  # groq could always serve
