"""``litellm.callbacks = [handler]``, LiteLLM's documented way to add a logger, replaces the
list ratetree's settling callback was put on by ``attach``. Every lease must still end with
its request: each pick puts the callback back before the call reads the list."""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from litellm_wiring import MESSAGES, Wire, assert_nothing_open, settled, wiring  # noqa: E402


class Counting(CustomLogger):  # type: ignore[misc]
    """A user's logger: counts the attempts it is told about."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    def log_pre_api_call(self, model: object, messages: object, kwargs: Any) -> None:
        self.attempts += 1


@pytest.fixture
def wire() -> Iterator[Wire]:
    saved = list(litellm.callbacks)
    try:
        yield from wiring()
    finally:
        litellm.callbacks = saved


def pair() -> list[dict[str, Any]]:
    return [
        {
            "model_name": "g",
            "litellm_params": {"model": f"openai/{name}", "api_key": "k", "mock_response": "ok"},
            "model_info": {"id": name, "max_parallel_requests": 1},
        }
        for name in ("a", "b")
    ]


def test_sync_calls_settle_after_the_callbacks_list_is_replaced(wire: Wire) -> None:
    routing, router = wire(pair(), num_retries=2)
    mine = Counting()
    litellm.callbacks = [mine]
    for _ in range(3):
        router.completion(model="g", messages=MESSAGES)
        assert routing.open_leases == 0
    with pytest.raises((litellm.APIError, litellm.InternalServerError)):
        router.completion(model="g", messages=MESSAGES, mock_response=Exception("boom"))
    assert_nothing_open(routing)
    assert mine.attempts == 6  # the user's logger still hears every attempt (3 + 1 + 2 retries)
    assert any(callback is mine for callback in litellm.callbacks)


def test_async_calls_and_streams_settle_after_the_callbacks_list_is_replaced(wire: Wire) -> None:
    routing, router = wire(pair())

    async def run() -> None:
        litellm.callbacks = [Counting()]
        for _ in range(3):
            await router.acompletion(model="g", messages=MESSAGES)
        stream = await router.acompletion(model="g", messages=MESSAGES, stream=True)
        async for _chunk in stream:
            pass
        await settled(routing)

    asyncio.run(run())
    assert_nothing_open(routing)
