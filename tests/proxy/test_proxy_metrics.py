"""ratetree's Prometheus metrics, in-process: why a refusal is counted as it is, and the
gauges read from a scheduler's snapshot."""

from __future__ import annotations

from typing import Any

import pytest

from ratetree.errors import NoCapacity
from ratetree.scheduler import Scheduler
from ratetree.testing import FakeClock

prometheus_client = pytest.importorskip("prometheus_client", reason="the proxy extra is missing")

from ratetree.integrations.litellm.metrics import proxy_metrics, refusal_reason  # noqa: E402

MODEL_LIST: list[dict[str, Any]] = [
    {
        "model_name": "g",
        "litellm_params": {"model": "openai/a", "rpm": 4},
        "model_info": {"id": "a"},
    },
    {
        "model_name": "g",
        "litellm_params": {"model": "openai/b", "rpm": 4},
        "model_info": {"id": "b"},
    },
]


def scheduler() -> Scheduler:
    return Scheduler.from_litellm(MODEL_LIST, clock=FakeClock(), allowed_fails=0)


def test_a_refusal_is_counted_by_what_held_it() -> None:
    s = scheduler()
    assert refusal_reason(None, "no capacity", None) == "max_parallel_requests"
    message = "ratetree: shared state unavailable for group 'g': down"
    assert refusal_reason(1.0, message, None) == "state_unavailable"
    for _ in range(8):
        s.acquire("g").release()
    with pytest.raises(NoCapacity) as refused:
        s.acquire("g")
    assert refusal_reason(refused.value.retry_after, "", s.explain("g")) == "rate_limit"
    cooling = scheduler()
    for _ in range(2):
        cooling.acquire("g").fail(retry_after=30)
    with pytest.raises(NoCapacity) as refused:
        cooling.acquire("g")
    assert refusal_reason(refused.value.retry_after, "", cooling.explain("g")) == "cooldown"


def test_the_gauges_read_the_snapshot() -> None:
    s = scheduler()
    s.acquire("g", exclude=frozenset({"b"})).release()
    s.acquire("g", exclude=frozenset({"a"})).fail(retry_after=30)
    metrics = proxy_metrics()
    assert metrics is not None
    metrics.refresh(s)
    sample = prometheus_client.REGISTRY.get_sample_value
    fill = sample(
        "ratetree_bucket_fill_ratio", {"deployment": "a", "model": "openai/a", "limit": "rpm 4/60s"}
    )
    assert fill == 0.75
    assert sample("ratetree_cooldown_seconds", {"deployment": "b", "model": "openai/b"}) == 30
    assert sample("ratetree_cooldown_seconds", {"deployment": "a", "model": "openai/a"}) == 0
    assert sample("ratetree_queue_length", {}) == 0
