"""A real ``litellm.Router`` through ratetree under what real traffic does: cancelled waits,
sync clients, streams, failing deployments, reconfiguration, the Router's own filters.

No network: every call is answered by LiteLLM's ``mock_response``. The ``wire`` fixture
checks after every test that no lease is open and nothing is in flight.
"""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402
from litellm.types.router import CustomRoutingStrategyBase  # noqa: E402

from litellm_wiring import (  # noqa: E402
    MESSAGES,
    Wire,
    example,
    ids_by_model,
    in_flight,
    one,
    settled,
    wiring,
)
from ratetree.integrations.litellm import RatetreeRouting  # noqa: E402
from ratetree.testing import FakeClock  # noqa: E402


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


def two(**second: Any) -> list[dict[str, Any]]:
    """Group ``g`` with deployments ``a`` and ``b`` (``second`` goes into b's params)."""
    return [
        {
            "model_name": "g",
            "litellm_params": {"model": "openai/a", "api_key": "k", "mock_response": "ok"},
            "model_info": {"id": "a"},
        },
        {
            "model_name": "g",
            "litellm_params": {
                "model": "openai/b",
                "api_key": "k",
                "mock_response": "ok",
                **second,
            },
            "model_info": {"id": "b"},
        },
    ]


# -- 1. cancellation -----------------------------------------------------------------------


def test_a_cancelled_request_frees_its_slot_one_loop_iteration_later(wire: Wire) -> None:
    routing, router = wire()

    async def run() -> None:
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(
                router.acompletion(model="one", messages=MESSAGES, mock_delay=1), 0.05
            )
        await asyncio.sleep(0)  # the cancelled task's done-callbacks run
        assert routing.open_leases == 0
        assert (await router.acompletion(model="one", messages=MESSAGES)).choices

    asyncio.run(run())


def test_a_request_cancelled_inside_a_task_that_goes_on_is_freed_by_its_next_request(
    wire: Wire,
) -> None:
    if sys.version_info < (3, 11):
        pytest.skip("asyncio.timeout (a cancellation inside the same task) is Python 3.11+")
    _, router = wire()

    async def run() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await router.acompletion(model="one", messages=MESSAGES, mock_delay=1)
        # The same task asks again: its earlier request is over, so the slot is its.
        assert (await router.acompletion(model="one", messages=MESSAGES)).choices

    asyncio.run(run())


# -- 2. sync clients -------------------------------------------------------------------------


def test_a_sync_client_in_a_loop_is_never_refused_and_holds_nothing_after_each_call(
    wire: Wire,
) -> None:
    routing, router = wire()
    for _ in range(60):
        router.completion(model="one", messages=MESSAGES)
        assert routing.open_leases == 0


def test_a_failed_sync_call_is_settled_before_it_raises(wire: Wire) -> None:
    routing, router = wire()
    with pytest.raises(litellm.InternalServerError):
        router.completion(
            model="one", messages=MESSAGES, mock_response="litellm.InternalServerError"
        )
    assert routing.open_leases == 0


# -- 3. streams ------------------------------------------------------------------------------


def test_a_stream_read_to_its_end_lets_the_next_call_in_without_a_sleep(wire: Wire) -> None:
    routing, router = wire()

    async def run() -> None:
        for _ in range(3):
            chunks = await router.acompletion(model="one", messages=MESSAGES, stream=True)
            assert routing.open_leases == 1  # held while it is read
            async for _chunk in chunks:
                pass
            assert (await router.acompletion(model="one", messages=MESSAGES)).choices

    asyncio.run(run())


def test_a_sync_stream_holds_its_slot_until_it_is_read(wire: Wire) -> None:
    routing, router = wire()
    chunks = router.completion(model="one", messages=MESSAGES, stream=True)
    assert routing.open_leases == 1
    for _chunk in chunks:
        pass
    asyncio.run(settled(routing))


def test_a_stream_closed_early_frees_its_slot(wire: Wire) -> None:
    routing, router = wire()

    async def run() -> None:
        chunks = await router.acompletion(model="one", messages=MESSAGES, stream=True)
        await chunks.__anext__()
        await chunks.aclose()  # the caller stops reading: LiteLLM reports nothing
        await settled(routing)  # within CLOSE_GRACE
        assert (await router.acompletion(model="one", messages=MESSAGES)).choices

    asyncio.run(run())


def test_a_sync_stream_closed_early_frees_its_slot(wire: Wire) -> None:
    routing, router = wire()
    chunks = router.completion(model="one", messages=MESSAGES, stream=True)
    next(chunks)
    chunks.close()
    asyncio.run(settled(routing))  # within CLOSE_GRACE
    assert router.completion(model="one", messages=MESSAGES).choices


class SlowLogger(CustomLogger):  # type: ignore[misc]
    """A logger listed before ratetree's that takes its time over each success."""

    async def async_log_success_event(
        self, kwargs: object, response_obj: object, start_time: object, end_time: object
    ) -> None:
        await asyncio.sleep(0.05)


@pytest.fixture
def slow_logger() -> Iterator[None]:
    saved = list(litellm.callbacks)
    litellm.callbacks = [SlowLogger()]
    try:
        yield
    finally:
        litellm.callbacks = saved


def test_a_stream_read_to_its_end_and_closed_is_settled_with_its_usage(
    slow_logger: None, wire: Wire
) -> None:
    # Closing a stream that was read to its end must not release it on its estimate before
    # LiteLLM's report of its usage arrives, even behind a slow logger.
    model_list = one()
    model_list[0]["litellm_params"]["tpm"] = 100_000
    options = {"estimate_tokens": lambda *_: 1000.0, "clock": FakeClock()}  # nothing refills
    routing, router = wire(model_list, routing_options=options)

    async def run() -> None:
        chunks = await router.acompletion(model="one", messages=MESSAGES, stream=True)
        async for _chunk in chunks:
            pass
        await chunks.aclose()
        await settled(routing)

    asyncio.run(run())
    (deployment,) = routing.scheduler.snapshot().deployments.values()
    (tpm,) = (b for b in deployment.buckets if b.kind == "tpm")
    assert 100_000 - 1000 < tpm.remaining < 100_000  # the usage, a few tokens, not 1000


def test_a_stream_whose_task_ends_at_its_end_is_settled_with_its_usage(
    slow_logger: None, wire: Wire
) -> None:
    # A server's request task ends as soon as it has passed the last chunk on; LiteLLM's
    # report of the usage comes later, behind the slow logger. The task's end must not
    # release the lease on its estimate first.
    model_list = one()
    model_list[0]["litellm_params"]["tpm"] = 100_000
    options = {"estimate_tokens": lambda *_: 1000.0, "clock": FakeClock()}
    routing, router = wire(model_list, routing_options=options)

    async def request() -> None:
        async for _chunk in await router.acompletion(model="one", messages=MESSAGES, stream=True):
            pass

    async def run() -> None:
        await asyncio.create_task(request())
        await settled(routing)

    asyncio.run(run())
    (deployment,) = routing.scheduler.snapshot().deployments.values()
    (tpm,) = (b for b in deployment.buckets if b.kind == "tpm")
    assert 100_000 - 1000 < tpm.remaining < 100_000


# -- 4. failover: in test_litellm_parity.py --------------------------------------------------


def test_a_retry_does_not_go_back_to_the_deployment_that_just_failed(wire: Wire) -> None:
    routing, router = wire(two(mock_response="litellm.InternalServerError"), num_retries=1)
    reached: Counter[str] = Counter()

    async def run() -> None:
        for _ in range(8):
            response = await router.acompletion(model="g", messages=MESSAGES)
            reached[response._hidden_params["model_id"]] += 1
        await settled(routing)

    asyncio.run(run())
    assert reached == {"a": 8}


# -- 5. reconfigure --------------------------------------------------------------------------


def test_reconfigure_switches_the_tree_and_the_routers_deployments_together(wire: Wire) -> None:
    routing, router = wire(two()[:1])
    assert router.completion(model="g", messages=MESSAGES)._hidden_params["model_id"] == "a"

    async def run() -> None:
        held = await router.acompletion(model="g", messages=MESSAGES, stream=True)
        routing.reconfigure(two()[1:])  # a goes, b comes: the open stream was granted on a
        assert [e["model_info"]["id"] for e in router.registry().deployments("g")] == ["b"]
        async for _chunk in held:
            pass
        await settled(routing)
        response = await router.acompletion(model="g", messages=MESSAGES)
        assert response._hidden_params["model_id"] == "b"

    asyncio.run(run())


def test_requests_racing_reconfigurations_are_served_never_broken(wire: Wire) -> None:
    routing, router = wire(two())
    configs = [two(), two()[:1], two()[1:]]
    served: Counter[str] = Counter()

    async def client() -> None:
        for _ in range(6):
            response = await router.acompletion(model="g", messages=MESSAGES)
            served[response._hidden_params["model_id"]] += 1

    async def run() -> None:
        clients = [asyncio.create_task(client()) for _ in range(4)]
        for i in range(30):  # a switch between every step of the clients' picks and calls
            routing.reconfigure(configs[i % 3])
            await asyncio.sleep(0)
        await asyncio.gather(*clients)  # any error a client met is raised here
        await settled(routing)

    asyncio.run(run())
    assert sum(served.values()) == 24


def test_a_deployment_added_to_the_router_behind_ratetrees_back_is_refused_clearly(
    wire: Wire,
) -> None:
    _, router = wire(two()[:1])
    router.add_deployment(litellm.types.router.Deployment(**two()[1]))
    other = {**two()[1], "model_name": "new", "model_info": {"id": "c"}}
    router.add_deployment(litellm.types.router.Deployment(**other))
    with pytest.raises(litellm.BadRequestError, match=r"RatetreeRouting\.reconfigure"):
        asyncio.run(router.acompletion(model="g", messages=MESSAGES))
    with pytest.raises(litellm.BadRequestError, match=r"RatetreeRouting\.reconfigure"):
        router.completion(model="g", messages=MESSAGES)
    with pytest.raises(litellm.BadRequestError, match="added to the Router after attach"):
        router.completion(model="new", messages=MESSAGES)


# -- 6. detach -------------------------------------------------------------------------------


class FirstOnly(CustomRoutingStrategyBase):  # type: ignore[misc]
    def __init__(self, router: Any) -> None:
        self.router = router

    async def async_get_available_deployment(self, model: str, **_: Any) -> Any:
        return self.router.registry().deployments(model)[0]

    def get_available_deployment(self, model: str, **_: Any) -> Any:
        return self.router.registry().deployments(model)[0]


def test_detach_gives_the_router_its_strategy_back_and_releases_what_is_open(
    wire: Wire,
) -> None:
    routing, router = wire(two())
    routing.detach()
    mine = FirstOnly(router)
    router.register_plugin(mine)
    routing.attach(router)

    async def run() -> None:
        held = await router.acompletion(model="g", messages=MESSAGES, stream=True)
        assert routing.open_leases == 1
        routing.detach()
        assert routing.open_leases == 0
        assert in_flight(routing) == 0
        async for _chunk in held:
            pass
        picks = {
            (await router.acompletion(model="g", messages=MESSAGES))._hidden_params["model_id"]
            for _ in range(6)
        }
        assert picks == {"a"}  # FirstOnly picks again

    asyncio.run(run())


# -- 7. what the Router reports --------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the names the issue reported on
def test_the_router_reports_umbrella_groups_with_every_deployment_they_reach(
    wire: Wire,
) -> None:
    routing, router = wire(example())
    ids = ids_by_model(routing)
    assert {e["model_info"]["id"] for e in router.get_model_list(model_name="fast")} == set(
        ids.values()
    )
    assert router.get_model_group_info("fast").rpm == 40  # 5 + 30 + 5, what the tree admits
    assert router.get_model_group_info("fast/GPT-OSS-120b").rpm == 35
    # One name per deployment a group reaches, as a plain Router lists a plain model_list.
    assert Counter(router.get_model_names()) == {
        "fast": 3,
        "fast/GPT-OSS-120b": 2,
        "fast/glm-4.7": 1,
    }


# -- 8. the Router's own filters and picks ---------------------------------------------------


def test_pre_call_checks_keep_a_prompt_off_a_deployment_too_small_for_it(wire: Wire) -> None:
    model_list = two()
    model_list[0]["model_info"]["max_input_tokens"] = 3
    _, router = wire(model_list, enable_pre_call_checks=True)
    long = [{"role": "user", "content": "a prompt far longer than three tokens " * 4}]

    async def run() -> set[str]:
        return {
            (await router.acompletion(model="g", messages=long))._hidden_params["model_id"]
            for _ in range(8)
        }

    assert asyncio.run(run()) == {"b"}


def test_tag_filtering_sends_a_tagged_request_to_the_tagged_deployment(wire: Wire) -> None:
    _, router = wire(two(tags=["blue"]), enable_tag_filtering=True)

    async def run() -> set[str]:
        return {
            (
                await router.acompletion(model="g", messages=MESSAGES, metadata={"tags": ["blue"]})
            )._hidden_params["model_id"]
            for _ in range(8)
        }

    assert asyncio.run(run()) == {"b"}


class OnlyB(CustomLogger):  # type: ignore[misc]
    async def async_filter_deployments(
        self, model: str, healthy_deployments: list[Any], *args: Any, **kwargs: Any
    ) -> list[Any]:
        return [d for d in healthy_deployments if d["model_info"]["id"] == "b"]


def test_async_filter_deployments_callbacks_narrow_what_ratetree_chooses_from(
    wire: Wire,
) -> None:
    _, router = wire(two())
    only_b = OnlyB()
    litellm.logging_callback_manager.add_litellm_callback(only_b)
    try:

        async def run() -> set[str]:
            return {
                (await router.acompletion(model="g", messages=MESSAGES))._hidden_params["model_id"]
                for _ in range(8)
            }

        assert asyncio.run(run()) == {"b"}
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(only_b)


def test_a_request_naming_a_deployment_id_goes_there_through_its_limits(wire: Wire) -> None:
    _, router = wire(two(rpm=2))
    served = [router.completion(model="b", messages=MESSAGES) for _ in range(2)]
    assert {r._hidden_params["model_id"] for r in served} == {"b"}
    with pytest.raises(litellm.RateLimitError):
        router.completion(model="b", messages=MESSAGES)  # b's rpm is spent; a is not b


def test_a_groups_only_deployment_is_not_cooled_down_unless_asked(wire: Wire) -> None:
    failing = {"mock_response": "litellm.InternalServerError"}
    for cool, cooling in ((False, 0.0), (True, 5.0)):
        routing, router = wire(routing_options={"allowed_fails": 0, "cool_last_deployment": cool})
        with pytest.raises(litellm.InternalServerError):
            router.completion(model="one", messages=MESSAGES, **failing)
        (deployment,) = routing.scheduler.snapshot().deployments.values()
        assert deployment.cooling_for == pytest.approx(cooling, abs=1.0)


def test_asking_for_a_deployment_without_a_call_holds_nothing(wire: Wire) -> None:
    routing, router = wire()
    assert router.get_available_deployment(model="one")["model_name"] == "one"
    assert asyncio.run(router.select("one", {"messages": MESSAGES}))["model_name"] == "one"
    assert routing.open_leases == 0


# -- 9. Python objects in litellm_params -----------------------------------------------------


def test_deployments_holding_python_objects_load_and_keep_those_objects() -> None:
    error = litellm.InternalServerError(message="boom", llm_provider="openai", model="x")

    def hook() -> None:
        return None

    model_list = one()
    model_list[0]["litellm_params"].update(mock_response=error, my_hook=hook)
    routing = RatetreeRouting.from_model_list(model_list)
    (entry,) = routing.model_list
    assert entry["litellm_params"]["mock_response"] is error
    assert entry["litellm_params"]["my_hook"] is hook


# -- 10. the path on the response ------------------------------------------------------------


def test_a_response_names_the_path_ratetree_chose(wire: Wire) -> None:
    routing, router = wire(example(mock_response="ok"))
    ids = ids_by_model(routing)

    async def run() -> Any:
        return await router.acompletion(model="fast/GPT-OSS-120b", messages=MESSAGES)

    response = asyncio.run(run())
    chosen = response._hidden_params["model_id"]
    assert chosen == ids["cerebras/gpt-oss-120b"]
    assert response._hidden_params["ratetree_path"] == f"fast/GPT-OSS-120b > {chosen}"
    response = asyncio.run(router.acompletion(model="fast", messages=MESSAGES))
    assert response._hidden_params["ratetree_path"].startswith("fast > fast/")


# -- a shared state --------------------------------------------------------------------------


def test_a_state_backend_passes_through_and_two_routers_share_the_limits(
    wire: Wire, tmp_path: Any
) -> None:
    pytest.importorskip("redis", reason="the redis extra is not installed")
    import redis_server
    from ratetree import RedisState

    redis_server.require()
    server = redis_server.RedisServer(tmp_path)
    server.start()
    try:
        model_list = one()
        model_list[0]["litellm_params"]["rpm"] = 2
        routers = [
            wire(model_list, routing_options={"state": RedisState(server.url, prefix="shared")})[1]
            for _ in range(2)
        ]
        for router in routers:
            router.completion(model="one", messages=MESSAGES)
        with pytest.raises(litellm.RateLimitError):
            routers[0].completion(model="one", messages=MESSAGES)
    finally:
        server.kill()
