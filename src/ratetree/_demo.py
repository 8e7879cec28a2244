"""``python -m ratetree``: the README's example, run on a frozen clock."""

from __future__ import annotations

import random
from collections import Counter

from ._errors import NoCapacity
from ._scheduler import Scheduler
from .testing import FakeClock

EXAMPLE_MODEL_LIST: list[dict[str, object]] = [
    {
        "model_name": "fast/GPT-OSS-120b",
        "litellm_params": {"model": "groq/openai/gpt-oss-120b", "rpm": 30, "order": 2},
    },
    {
        "model_name": "fast/GPT-OSS-120b",
        "litellm_params": {"model": "cerebras/gpt-oss-120b", "rpm": 5, "order": 1},
    },
    {"model_name": "fast/glm-4.7", "litellm_params": {"model": "cerebras/zai-glm-4.7", "rpm": 5}},
    {"model_name": "fast", "litellm_params": {"model": "fast/GPT-OSS-120b"}},
    {"model_name": "fast", "litellm_params": {"model": "fast/glm-4.7"}},
]


def _provider(lease_payload: object) -> str:
    params = lease_payload["litellm_params"]  # type: ignore[index]
    return str(params["model"])


def main() -> None:
    clock = FakeClock()
    scheduler = Scheduler.from_litellm(EXAMPLE_MODEL_LIST, clock=clock, rng=random.Random(7))
    print("ratetree demo: the fast group of groups, clock frozen at t=0\n")
    for group, count in (("fast/GPT-OSS-120b", 36), ("fast", 10)):
        reached: Counter[str] = Counter()
        refused: list[NoCapacity] = []
        for _ in range(count):
            try:
                lease = scheduler.acquire(group)
            except NoCapacity as exc:
                refused.append(exc)
                continue
            reached[_provider(lease.deployment)] += 1
            lease.release()
        print(f"{count} requests to {group!r}:")
        for provider, n in reached.items():
            print(f"  {n:3d} -> {provider}")
        if refused:
            print(f"  {len(refused):3d} refused, first retry_after = {refused[0].retry_after} s")
        print()
    clock.advance(2.0)
    lease = scheduler.acquire("fast")
    route = " > ".join((*lease.path[:-1], _provider(lease.deployment)))
    print(f"t=2s: one more request to 'fast' -> {route} (id {lease.deployment_id})")
    lease.release()
    print("\nexplain('fast') now:")
    print(scheduler.explain("fast"))
