"""A sync ``router.completion`` (``mock_response``) through ratetree, against the same Router
alone: the median of 500 calls each, in alternating rounds. Offline.

Usage: ``.venv/bin/python benchmarks/litellm_sync.py`` (needs litellm). Against another
checkout: ``PYTHONPATH=<checkout>/src .venv/bin/python benchmarks/litellm_sync.py``. The
ratetree Router is attached only for its own rounds: LiteLLM's callbacks are process-wide.
"""

from __future__ import annotations

import os
import statistics
import time
from importlib.metadata import version
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported

import litellm
from ratetree.integrations.litellm import RatetreeRouting

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


if __name__ == "__main__":
    main()
