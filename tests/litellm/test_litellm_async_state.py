"""A real ``litellm.Router`` whose picks await ``AsyncRedisState`` (the async pick path of
``RatetreeRouting``): two Routers share the limits, nothing blocks, every lease settles
and every release reaches Redis."""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")
pytest.importorskip("redis", reason="the redis extra is not installed")

import asyncio  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import redis_server  # noqa: E402
from litellm_wiring import MESSAGES, Wire, one, settled, wiring  # noqa: E402
from ratetree import AsyncRedisState  # noqa: E402


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[redis_server.RedisServer]:
    yield from redis_server.running(tmp_path)


def test_two_routers_on_async_redis_share_the_limits_and_deliver_every_release(
    wire: Wire, server: redis_server.RedisServer
) -> None:
    prefix = uuid.uuid4().hex
    model_list = one()
    model_list[0]["litellm_params"]["rpm"] = 4  # the one limit here: calls run at once
    del model_list[0]["litellm_params"]["max_parallel_requests"]
    states = [AsyncRedisState(server.url, prefix=prefix) for _ in range(2)]
    wired = [wire(model_list, routing_options={"state": state}) for state in states]

    async def run() -> list[object]:
        calls = [
            router.acompletion(model="one", messages=MESSAGES)
            for _ in range(3)
            for _, router in wired
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        for routing, _ in wired:
            await settled(routing)
            await routing.scheduler.aclose()
        return results

    results = asyncio.run(run())
    refused = [r for r in results if isinstance(r, litellm.RateLimitError)]
    assert len(results) - len(refused) == 4 and len(refused) == 2, results
    for state in states:
        assert state.pending == 0
        assert state.stats.round_trips > 0


def test_a_sync_call_on_an_async_state_names_the_async_way(
    wire: Wire, server: redis_server.RedisServer
) -> None:
    _, router = wire(routing_options={"state": AsyncRedisState(server.url)})
    # The Router's sync path cannot await: ratetree's ConfigError reaches the caller as
    # LiteLLM's BadRequestError, naming the way that works.
    with pytest.raises(litellm.BadRequestError, match=r"await scheduler\.aacquire"):
        router.completion(model="one", messages=MESSAGES)
