"""The group-of-groups example from the README, exactly as the issue states it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from examples import readme_model_list
from ratetree import Lease, NoCapacity, Scheduler
from ratetree.testing import FakeClock


def provider(lease: Lease) -> str:
    """The provider model of the model_list entry the lease carries as its payload."""
    entry = lease.deployment
    assert isinstance(entry, dict)
    return str(entry["litellm_params"]["model"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)


@pytest.fixture
def scheduler(clock: FakeClock) -> Scheduler:
    return Scheduler.from_litellm(readme_model_list(), clock=clock, rng=random.Random(3))


def test_order_one_serves_first_then_order_two_then_refusal_with_exact_retry(
    scheduler: Scheduler,
) -> None:
    first = [provider(scheduler.acquire("fast/GPT-OSS-120b")) for _ in range(5)]
    then = [provider(scheduler.acquire("fast/GPT-OSS-120b")) for _ in range(30)]
    assert first == ["cerebras/gpt-oss-120b"] * 5
    assert then == ["groq/openai/gpt-oss-120b"] * 30
    with pytest.raises(NoCapacity) as info:
        scheduler.acquire("fast/GPT-OSS-120b")
    assert info.value.group == "fast/GPT-OSS-120b"
    assert info.value.retry_after == pytest.approx(2.0, abs=1e-9)


def test_umbrella_and_subgroups_draw_on_the_same_buckets(scheduler: Scheduler) -> None:
    reached: Counter[str] = Counter()
    names = ["fast", "fast/GPT-OSS-120b", "fast/glm-4.7"]
    rng = random.Random(11)
    for _ in range(500):
        lease = scheduler.try_acquire(rng.choice(names))
        if lease is not None:
            reached[provider(lease)] += 1
    assert sum(reached.values()) == 40
    assert reached == {
        "groq/openai/gpt-oss-120b": 30,
        "cerebras/gpt-oss-120b": 5,
        "cerebras/zai-glm-4.7": 5,
    }


def test_umbrella_alone_reaches_all_three_deployments(scheduler: Scheduler) -> None:
    reached = Counter(provider(scheduler.acquire("fast")) for _ in range(40))
    assert reached == {
        "groq/openai/gpt-oss-120b": 30,
        "cerebras/gpt-oss-120b": 5,
        "cerebras/zai-glm-4.7": 5,
    }
    assert scheduler.try_acquire("fast") is None


def test_umbrella_uses_cerebras_before_groq_inside_the_gpt_subgroup(scheduler: Scheduler) -> None:
    gpt = [
        provider(lease)
        for lease in (scheduler.acquire("fast") for _ in range(40))
        if "gpt-oss" in provider(lease)
    ]
    assert gpt[:5] == ["cerebras/gpt-oss-120b"] * 5
    assert set(gpt[5:]) == {"groq/openai/gpt-oss-120b"}


def test_refill_after_retry_after_admits_exactly_then(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    for _ in range(35):
        scheduler.acquire("fast/GPT-OSS-120b")
    with pytest.raises(NoCapacity) as info:
        scheduler.acquire("fast/GPT-OSS-120b")
    wait = info.value.retry_after
    assert wait is not None
    clock.advance(wait - 1e-6)
    assert scheduler.try_acquire("fast/GPT-OSS-120b") is None
    clock.advance(1e-6)
    lease = scheduler.acquire("fast/GPT-OSS-120b")
    assert provider(lease) == "groq/openai/gpt-oss-120b"
