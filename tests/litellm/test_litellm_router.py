"""A real ``litellm.Router`` routing through ratetree, on the README's group-of-groups example.

No network and no API keys: every call uses LiteLLM's ``mock_response``, the cost map is
the local copy, and the scheduler runs on a FakeClock. Each test builds its own Router, and
the ``wire`` fixture checks afterwards that no lease was left open.
"""

from __future__ import annotations

import os

# Before litellm is imported: read the bundled model cost map instead of fetching it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import asyncio
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import httpx  # noqa: E402  (a LiteLLM dependency)
import yaml  # noqa: E402

from examples import every_block, readme_model_list  # noqa: E402
from litellm import RateLimitError, Router  # noqa: E402
from litellm_wiring import MESSAGES, example, ids_by_model, in_flight, settled  # noqa: E402
from ratetree.integrations.litellm import RatetreeRouting, estimate_tokens  # noqa: E402
from ratetree.integrations.litellm.ledger import CLOSE_GRACE  # noqa: E402
from ratetree.testing import FakeClock  # noqa: E402

Wire = Callable[..., tuple[RatetreeRouting, Any, FakeClock]]


def rpm_of(routing: RatetreeRouting, model: str) -> int:
    return next(
        int(e["litellm_params"]["rpm"])
        for e in routing.model_list
        if e["litellm_params"]["model"] == model
    )


def tpm_left(routing: RatetreeRouting, deployment_id: str) -> float:
    snapshot = routing.scheduler.snapshot()
    (bucket,) = (b for b in snapshot.deployments[deployment_id].buckets if b.kind == "tpm")
    return bucket.remaining


def mock_429(retry_after: str) -> RateLimitError:
    response = httpx.Response(
        429,
        headers={"retry-after": retry_after},
        request=httpx.Request("POST", "https://provider.invalid/v1/chat/completions"),
    )
    return litellm.RateLimitError(
        message="provider says slow down", llm_provider="cerebras", model="x", response=response
    )


@pytest.fixture
def wire() -> Iterator[Wire]:
    made: list[RatetreeRouting] = []

    def make(
        model_list: list[dict[str, Any]] | None = None,
        *,
        lease_timeout: float = 600.0,
        estimate: Callable[[Any], float] = estimate_tokens,
        cool_last_deployment: bool = True,
        **router_options: Any,
    ) -> tuple[RatetreeRouting, Any, FakeClock]:
        clock = FakeClock()
        routing = RatetreeRouting.from_model_list(
            example() if model_list is None else model_list,
            clock=clock,
            rng=random.Random(7),
            lease_timeout=lease_timeout,
            estimate_tokens=estimate,
            cool_last_deployment=cool_last_deployment,
        )
        router = Router(
            model_list=routing.model_list,
            model_group_alias=routing.model_group_alias,
            num_retries=router_options.pop("num_retries", 0),
            retry_after=0,
            **router_options,
        )
        routing.attach(router)
        made.append(routing)
        return routing, router, clock

    yield make
    for routing in made:
        assert routing.open_leases == 0
        assert in_flight(routing) == 0
    for routing in made:
        routing.detach()


def call(router: Any, model: str, **kwargs: Any) -> Any:
    kwargs.setdefault("mock_response", "ok")
    return asyncio.run(router.acompletion(model=model, messages=MESSAGES, **kwargs))


def test_the_router_sees_real_deployments_under_every_group_that_reaches_them(
    wire: Wire,
) -> None:
    routing, router, _ = wire()
    deployments = [e for e in example() if e["model_name"] != "fast"]
    # Each deployment under its own group, without `order` (ratetree applies orders), ...
    own = [e for e in routing.model_list if e["model_name"] != "fast"]
    assert [e["litellm_params"] for e in own] == [
        {k: v for k, v in e["litellm_params"].items() if k != "order"} for e in deployments
    ]
    # ... and again under the umbrella group, under the same id.
    assert sorted(e["model_info"]["id"] for e in routing.model_list if e["model_name"] == "fast")
    assert routing.model_group_alias == {}
    registry = router.registry()
    assert set(registry.names(kind="ids")) == {e["model_info"]["id"] for e in routing.model_list}
    assert set(registry.names(kind="group_set")) == {
        "fast",
        *(e["model_name"] for e in deployments),
    }
    # What the proxy asks before it routes a request: is the name known at all?
    assert registry.resolve("fast", kind="recognized")


def test_requests_to_fast_reach_the_sub_groups_deployments_with_shared_limits(
    wire: Wire,
) -> None:
    routing, router, _ = wire()
    ids = ids_by_model(routing)
    glm, oss_1, oss_2 = "cerebras/zai-glm-4.7", "cerebras/gpt-oss-120b", "groq/openai/gpt-oss-120b"
    reached: Counter[str] = Counter()

    async def burst() -> None:
        # glm's sub-group first: its budget is the one `fast` draws on afterwards.
        for _ in range(rpm_of(routing, glm)):
            response = await router.acompletion(
                model="fast/glm-4.7", messages=MESSAGES, mock_response="ok"
            )
            assert response._hidden_params["model_id"] == ids[glm]
        for _ in range(rpm_of(routing, oss_1) + rpm_of(routing, oss_2)):
            response = await router.acompletion(model="fast", messages=MESSAGES, mock_response="ok")
            reached[response._hidden_params["model_id"]] += 1
        await settled(routing)

    asyncio.run(burst())
    # glm had nothing left, so every request to `fast` went to the other sub-group.
    assert reached == {ids[oss_1]: rpm_of(routing, oss_1), ids[oss_2]: rpm_of(routing, oss_2)}
    for name in ("fast", "fast/glm-4.7", "fast/GPT-OSS-120b"):
        with pytest.raises(litellm.RateLimitError):
            call(router, name)


def test_requests_to_fast_spread_over_both_sub_groups(wire: Wire) -> None:
    routing, router, _ = wire()
    ids = ids_by_model(routing)
    reached = Counter(call(router, "fast")._hidden_params["model_id"] for _ in range(12))
    assert reached[ids["cerebras/zai-glm-4.7"]] > 0
    assert reached[ids["cerebras/gpt-oss-120b"]] + reached[ids["groq/openai/gpt-oss-120b"]] > 0
    assert sum(reached.values()) == 12


def test_an_rpm_exhausted_order_1_deployment_is_skipped_before_any_429(wire: Wire) -> None:
    routing, router, _ = wire()
    ids = ids_by_model(routing)
    order_1 = rpm_of(routing, "cerebras/gpt-oss-120b")
    reached = [
        call(router, "fast/GPT-OSS-120b")._hidden_params["model_id"] for _ in range(order_1 + 1)
    ]
    assert reached == [ids["cerebras/gpt-oss-120b"]] * order_1 + [ids["groq/openai/gpt-oss-120b"]]
    # No call failed on the way: nothing is cooling down.
    snapshot = routing.scheduler.snapshot()
    assert all(d.cooling_for == 0 for d in snapshot.deployments.values())


def test_a_mocked_429_with_retry_after_cools_the_deployment_for_exactly_that_long(
    wire: Wire,
) -> None:
    # The Router's own cooldown runs on the wall clock, not on the FakeClock: off, so what is
    # measured is ratetree's (LiteLLM 1.109 cools glm too, as a plain Router does).
    routing, router, clock = wire(disable_cooldowns=True)
    glm = ids_by_model(routing)["cerebras/zai-glm-4.7"]
    with pytest.raises(litellm.RateLimitError):
        call(router, "fast/glm-4.7", mock_response=mock_429("7"))
    assert routing.scheduler.snapshot().deployments[glm].cooling_for == 7.0
    assert "cooling down" in str(routing.scheduler.explain("fast/glm-4.7"))

    clock.advance(7.0 - 1e-3)
    with pytest.raises(litellm.RateLimitError) as refused:
        call(router, "fast/glm-4.7")
    assert refused.value.headers == {"retry-after": "1", "retry-after-ms": "1"}  # rounded up
    clock.advance(1e-3)
    assert call(router, "fast/glm-4.7")._hidden_params["model_id"] == glm


def test_a_mocked_429_without_retry_after_counts_as_a_plain_failure(wire: Wire) -> None:
    routing, router, _ = wire()
    glm = ids_by_model(routing)["cerebras/zai-glm-4.7"]
    error = litellm.RateLimitError(message="slow down", llm_provider="cerebras", model="x")
    with pytest.raises(litellm.RateLimitError):
        call(router, "fast/glm-4.7", mock_response=error)
    # One failure is within allowed_fails: no cooldown.
    assert routing.scheduler.snapshot().deployments[glm].cooling_for == 0


def cooling_after_repeated(error: Exception, wire: Wire) -> tuple[float, float]:
    """Fail one more time than allowed_fails on glm; return its cooldown and cooldown_time."""
    routing, router, _ = wire()
    glm = ids_by_model(routing)["cerebras/zai-glm-4.7"]
    for _ in range(routing.scheduler.allowed_fails + 1):
        with pytest.raises(type(error)):
            call(router, "fast/glm-4.7", mock_response=error)
    cooling = routing.scheduler.snapshot().deployments[glm].cooling_for
    return cooling, routing.scheduler.cooldown_time


def test_repeated_server_errors_cool_the_deployment_by_the_failure_policy(wire: Wire) -> None:
    error = litellm.InternalServerError(message="boom", llm_provider="cerebras", model="x")
    cooling, cooldown_time = cooling_after_repeated(error, wire)
    assert cooling == cooldown_time


def test_errors_that_are_the_requests_own_fault_do_not_cool_the_deployment(wire: Wire) -> None:
    error = litellm.BadRequestError(message="bad", llm_provider="cerebras", model="x")
    cooling, _ = cooling_after_repeated(error, wire)
    assert cooling == 0


def test_tpm_is_settled_with_the_mocked_usage(wire: Wire) -> None:
    tpm = 100_000
    routing, router, _ = wire(example(tpm=tpm))
    glm = ids_by_model(routing)["cerebras/zai-glm-4.7"]
    usage = {"prompt_tokens": 700, "completion_tokens": 123, "total_tokens": 823}
    mock = {"choices": [{"message": {"role": "assistant", "content": "ok"}}], "usage": usage}
    request = {"messages": MESSAGES, "max_tokens": 4000}

    async def one() -> Any:
        response = await router.acompletion(model="fast/glm-4.7", mock_response=mock, **request)
        await settled(routing)
        return response

    response = asyncio.run(one())
    assert response.usage.total_tokens == usage["total_tokens"]
    assert estimate_tokens(request) != usage["total_tokens"]
    assert tpm_left(routing, glm) == tpm - usage["total_tokens"]


def test_a_stream_is_settled_with_its_usage_once_it_ends(wire: Wire) -> None:
    tpm = 100_000
    routing, router, _ = wire(example(tpm=tpm))
    glm = ids_by_model(routing)["cerebras/zai-glm-4.7"]

    async def stream() -> Any:
        chunks = await router.acompletion(
            model="fast/glm-4.7",
            messages=MESSAGES,
            mock_response="a streamed answer",
            stream=True,
            stream_options={"include_usage": True},
        )
        assert routing.open_leases == 1  # held while the stream is being read
        usage = [chunk.usage async for chunk in chunks if getattr(chunk, "usage", None)]
        await settled(routing)
        return usage[-1]

    usage = asyncio.run(stream())
    assert tpm_left(routing, glm) == tpm - usage.total_tokens


def test_an_abandoned_stream_is_released_after_lease_timeout(wire: Wire) -> None:
    routing, router, clock = wire(lease_timeout=60.0)

    async def abandon() -> None:
        chunks = await router.acompletion(
            model="fast/glm-4.7", messages=MESSAGES, mock_response="never read", stream=True
        )
        async for _ in chunks:
            break  # the caller walks away, its task goes on; LiteLLM reports nothing
        assert routing.open_leases == 1
        clock.advance(60.0)
        await router.acompletion(model="fast/GPT-OSS-120b", messages=MESSAGES, mock_response="ok")
        assert routing.open_leases == 0  # the next pick swept it

    asyncio.run(abandon())


def test_an_abandoned_stream_is_released_when_its_task_ends(wire: Wire) -> None:
    routing, router, clock = wire()

    async def abandon() -> None:
        chunks = await router.acompletion(
            model="fast/glm-4.7", messages=MESSAGES, mock_response="never read", stream=True
        )
        async for _ in chunks:
            break

    async def run() -> None:
        await asyncio.create_task(abandon())
        await asyncio.sleep(0)  # the ended task's done-callbacks run
        # Released CLOSE_GRACE after its task ended: read to its end, a stream's usage is
        # reported a moment later, and nothing tells an abandoned one from that.
        assert routing.open_leases == 1
        clock.advance(CLOSE_GRACE)
        assert routing.open_leases == 0

    asyncio.run(run())


def test_router_retries_settle_every_attempts_lease(wire: Wire) -> None:
    picks = []

    def counting(request: Any) -> float:
        picks.append(request)
        return estimate_tokens(request)

    routing, router, _ = wire(num_retries=2, estimate=counting)
    error = litellm.InternalServerError(message="boom", llm_provider="groq", model="x")

    async def failing() -> None:
        with pytest.raises(litellm.InternalServerError):
            await router.acompletion(
                model="fast/GPT-OSS-120b", messages=MESSAGES, mock_response=error
            )
        await settled(routing)

    asyncio.run(failing())
    snapshot = routing.scheduler.snapshot()
    attempts = sum(
        rpm_of(routing, model) - bucket.remaining
        for model, deployment_id in ids_by_model(routing).items()
        for bucket in snapshot.deployments[deployment_id].buckets
    )
    # LiteLLM retried (and fell back across order tiers); every attempt took its own lease
    # and each was settled (the wire fixture checks none is left open).
    assert len(picks) > 1
    assert attempts == len(picks)


def test_no_capacity_raises_litellms_rate_limit_error_with_retry_after(wire: Wire) -> None:
    routing, router, _ = wire()
    rpm = rpm_of(routing, "cerebras/zai-glm-4.7")
    for _ in range(rpm):
        call(router, "fast/glm-4.7")
    with pytest.raises(litellm.RateLimitError) as refused:
        call(router, "fast/glm-4.7")
    expected = str(round(60 / rpm))  # one request refills every 60/rpm seconds
    assert refused.value.status_code == 429
    assert refused.value.headers == {"retry-after": expected, "retry-after-ms": expected + "000"}
    assert refused.value.num_retries == 0  # the Router does not retry a refusal of the tree
    assert refused.value.response.headers["retry-after"] == expected
    assert "no capacity in group 'fast/glm-4.7'" in str(refused.value)


def test_an_unknown_group_is_a_bad_request(wire: Wire) -> None:
    _, router, _ = wire()
    # The Router refuses it before ratetree is asked, on either path.
    with pytest.raises(litellm.BadRequestError, match="model=slow"):
        call(router, "slow")
    with pytest.raises(litellm.BadRequestError, match="model=slow"):
        router.completion(model="slow", messages=MESSAGES, mock_response="ok")


def test_a_request_larger_than_any_tpm_bucket_is_a_bad_request(wire: Wire) -> None:
    _, router, _ = wire(example(tpm=1000))
    with pytest.raises(litellm.BadRequestError, match="exceeds every path"):
        call(router, "fast", max_tokens=1000)


def test_the_sync_completion_path_routes_and_settles(wire: Wire) -> None:
    routing, router, _ = wire()
    ids = ids_by_model(routing)
    response = router.completion(model="fast/glm-4.7", messages=MESSAGES, mock_response="ok")
    assert response._hidden_params["model_id"] == ids["cerebras/zai-glm-4.7"]
    asyncio.run(settled(routing))


def test_every_router_demo_in_the_docs_prints_what_the_docs_show(tmp_path: Path) -> None:
    """A demo is a Python block that runs a RatetreeRouting with asyncio; what it prints
    is the next block without a language, in README.md or docs/*.md."""
    found = every_block()
    demos = [
        (demo, found[i + 1])
        for i, demo in enumerate(found[:-1])
        if demo.language == "python"
        and "RatetreeRouting" in demo.text
        and "asyncio.run(" in demo.text
    ]
    assert demos, "the docs lost the Router demo"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model_list": readme_model_list()}))
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for demo, shown in demos:
        assert (shown.file, shown.language) == (demo.file, ""), demo.file
        (tmp_path / "demo.py").write_text(demo.text)
        run = subprocess.run(
            [sys.executable, "demo.py"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, (demo.file, run.stderr)
        assert run.stdout == shown.text, demo.file


def test_importing_the_integration_without_litellm_names_the_extra() -> None:
    script = (
        "import sys; sys.modules['litellm'] = None\n"
        "import ratetree\n"
        "try:\n"
        "    from ratetree.integrations.litellm import RatetreeRouting\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'ratetree[litellm]'" in out
