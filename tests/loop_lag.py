"""A loop-lag probe: a task that sleeps ``PROBE`` seconds again and again and records how
late it wakes. A loop blocked by a round trip wakes it late by as much. Used by the
loop-lag test and by ``benchmarks/redis_async_bench.py``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

PROBE = 0.001  # seconds the probe sleeps between wake-ups


async def _probe(lags: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + PROBE
        await asyncio.sleep(PROBE)
        lags.append(loop.time() - due)


async def lags_while(work: Callable[[], Awaitable[Any]]) -> list[float]:
    """How late (seconds) the probe woke, each time, while ``work()`` ran. The probe is
    asleep before the work starts, so a loop the work blocks at once is seen too."""
    lags: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.ensure_future(_probe(lags, stop))
    await asyncio.sleep(0)  # the probe computes its first due time and sleeps
    try:
        await work()
    finally:
        stop.set()
        await probe
    return lags
