"""pytest-benchmark cases: what a Python user would otherwise pick to limit requests, one
check per iteration, with ample capacity, beside ratetree's acquire + release and the
floor (``test_acquire.py``). ``extra_info``: ``case="peer"`` and the peer's name."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from limits import parse, storage, strategies

AMPLE = "1000000000/minute"  # never runs out within a run


@pytest.mark.parametrize("window", ["fixed", "moving"])
def test_limits_hit(benchmark: Any, window: str) -> None:
    """``limits``: one ``hit`` (check and count) on an in-memory storage."""
    memory = storage.MemoryStorage()
    limiter: strategies.RateLimiter = (
        strategies.FixedWindowRateLimiter(memory)
        if window == "fixed"
        else strategies.MovingWindowRateLimiter(memory)
    )
    item = parse(AMPLE)
    assert benchmark(limiter.hit, item, "key")
    benchmark.group = "peers"
    benchmark.extra_info.update(case="peer", peer=f"limits {window}-window hit")


def test_aiolimiter_has_capacity(benchmark: Any) -> None:
    """aiolimiter: ``has_capacity()``, its synchronous check (it takes nothing; taking
    capacity is the coroutine ``acquire``). The limiter reads its event loop's clock, so it
    is made inside a loop, which stays open for the run."""
    aiolimiter = pytest.importorskip("aiolimiter", reason="pip install -e '.[bench]'")
    loop = asyncio.new_event_loop()

    async def make() -> Any:
        limiter = aiolimiter.AsyncLimiter(10**9, 60)
        limiter.has_capacity()  # binds the limiter to this loop
        return limiter

    try:
        limiter = loop.run_until_complete(make())
        assert benchmark(limiter.has_capacity)
    finally:
        loop.close()
    benchmark.group = "peers"
    benchmark.extra_info.update(case="peer", peer="aiolimiter has_capacity")
