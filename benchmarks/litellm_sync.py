"""A sync ``router.completion`` (``mock_response``) through ratetree, against the same Router
alone: the median of 500 calls each, in alternating rounds. Offline.

Usage: ``.venv/bin/python benchmarks/litellm_sync.py`` (needs litellm). Against another
checkout: ``PYTHONPATH=<checkout>/src .venv/bin/python benchmarks/litellm_sync.py``. The
ratetree Router is attached only for its own rounds: LiteLLM's callbacks are process-wide.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from importlib.metadata import version
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

import litellm
from ratetree.integrations.litellm import RatetreeRouting
from ratetree.integrations.litellm.blocking import Loops
from ratetree.integrations.litellm.filters import allowed_sync
from ratetree.integrations.litellm.view import RouterView

ROUNDS = 20
CALLS = 25  # per round and case: 500 timed calls per case
MESSAGES = [{"role": "user", "content": "hi"}]
MODEL_LIST = [
    {
        "model_name": "g",
        "litellm_params": {"model": f"openai/{name}", "api_key": "k", "mock_response": "ok"},
        "model_info": {"id": name},
    }
    for name in ("a", "b")
]


def timed(router: Any, into: list[float]) -> None:
    for _ in range(CALLS):
        start = time.perf_counter()
        router.completion(model="g", messages=MESSAGES, num_retries=0)
        into.append(time.perf_counter() - start)


def main() -> None:
    plain = litellm.Router(model_list=MODEL_LIST)
    routing = RatetreeRouting.from_model_list(MODEL_LIST)
    router = litellm.Router(model_list=routing.model_list)
    alone: list[float] = []
    through: list[float] = []
    timed(plain, [])  # warm both up, untimed
    routing.attach(router)
    timed(router, [])
    routing.detach()
    # Rounds alternate, so that a busy machine slows both cases alike.
    for _ in range(ROUNDS):
        timed(plain, alone)
        routing.attach(router)
        try:
            timed(router, through)
        finally:
            routing.detach()
    a, t = statistics.median(alone) * 1e3, statistics.median(through) * 1e3
    print(f"litellm {version('litellm')}, median of {ROUNDS * CALLS} sync mocked completions each")
    print(f"  Router alone:     {a:.2f} ms")
    print(f"  through ratetree: {t:.2f} ms  (+{t - a:.2f} ms)")
    alone_us = filter_step_us(router, routing)
    print(f"  the sync filter step alone: {alone_us:.0f} µs on a thread with no loop running,")

    async def in_loop() -> float:  # where LiteLLM 1.109's sync path makes its pick
        return filter_step_us(router, routing)

    print(f"  {asyncio.run(in_loop()):.0f} µs on a thread whose loop is running")


def filter_step_us(router: Any, routing: RatetreeRouting) -> float:
    """The median of ``ROUNDS * CALLS`` runs of what a sync pick adds to the Router's own work:
    its async filter chain (``router.select``) run to its end from sync code."""
    view = RouterView(routing.scheduler.spec)
    request = {"messages": MESSAGES}
    loops = Loops()  # as the routing keeps its own
    timings = []
    for _ in range(ROUNDS * CALLS):
        start = time.perf_counter()
        allowed_sync(loops, router, view, "g", request, MESSAGES, None)
        timings.append(time.perf_counter() - start)
    loops.close()
    return statistics.median(timings) * 1e6


if __name__ == "__main__":
    main()
