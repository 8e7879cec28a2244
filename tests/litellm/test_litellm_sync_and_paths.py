"""A real ``litellm.Router`` through ratetree: the sync path keeps the Router's own filters
as the async path does, and every kind of response carries the path ratetree chose.

No network: every call is answered by LiteLLM's ``mock_response``. The ``wire`` fixture
checks after every test that no lease is open and nothing is in flight.
"""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from litellm_wiring import MESSAGES, Wire, example, ids_by_model, settled, wiring  # noqa: E402
from ratetree.integrations.litellm import RatetreeRouting  # noqa: E402
from ratetree.integrations.litellm.reading import PATH  # noqa: E402

LONG = [{"role": "user", "content": "a prompt far longer than twenty tokens " * 8}]


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


def pair(prefix: str = "", **second: Any) -> list[dict[str, Any]]:
    """Group ``g`` with deployments ``a`` and ``b`` (``second`` goes into b's params). LiteLLM
    caches model info for the whole process: a test that sets ``max_input_tokens`` gives its
    ids and models a ``prefix`` of its own."""
    return [
        {
            "model_name": "g",
            "litellm_params": {
                "model": f"openai/{prefix}{name}",
                "api_key": "k",
                "mock_response": "ok",
            }
            | (second if name == "b" else {}),
            "model_info": {"id": prefix + name},
        }
        for name in ("a", "b")
    ]


def served_sync(router: Any, times: int = 8, **kwargs: Any) -> set[str]:
    kwargs.setdefault("messages", MESSAGES)
    return {router.completion(model="g", **kwargs)._hidden_params["model_id"] for _ in range(times)}


# -- the Router's filters on the sync path ---------------------------------------------------


def test_sync_pre_call_checks_keep_a_prompt_off_a_deployment_too_small_for_it(
    wire: Wire,
) -> None:
    model_list = pair("checked-")
    model_list[0]["model_info"]["max_input_tokens"] = 20
    routing, router = wire(model_list, enable_pre_call_checks=True)
    assert served_sync(router, messages=LONG) == {"checked-b"}
    # A short prompt fits both.
    assert served_sync(router, messages=MESSAGES) == {"checked-a", "checked-b"}
    # Asking without calling sees the same filters, and holds nothing.
    for _ in range(4):
        picked = router.get_available_deployment(model="g", messages=LONG)
        assert picked["model_info"]["id"] == "checked-b"
    assert routing.open_leases == 0


def test_sync_tag_filtering_sends_a_tagged_request_to_the_tagged_deployment(wire: Wire) -> None:
    _, router = wire(pair(tags=["blue"]), enable_tag_filtering=True)
    assert served_sync(router, metadata={"tags": ["blue"]}) == {"b"}


class OnlyB(CustomLogger):  # type: ignore[misc]
    async def async_filter_deployments(
        self, model: str, healthy_deployments: list[Any], *args: Any, **kwargs: Any
    ) -> list[Any]:
        await asyncio.sleep(0)  # a callback that really awaits
        return [d for d in healthy_deployments if d["model_info"]["id"] == "b"]


def test_sync_calls_apply_async_filter_deployments_callbacks(wire: Wire) -> None:
    _, router = wire(pair())
    only_b = OnlyB()
    litellm.logging_callback_manager.add_litellm_callback(only_b)
    try:
        assert served_sync(router) == {"b"}
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(only_b)


def test_a_sync_call_made_inside_a_running_loop_still_applies_the_filters(wire: Wire) -> None:
    model_list = pair("blocking-")
    model_list[0]["model_info"]["max_input_tokens"] = 20
    _, router = wire(model_list, enable_pre_call_checks=True)

    async def blocking_caller() -> set[str]:
        return served_sync(router, times=4, messages=LONG)

    assert asyncio.run(blocking_caller()) == {"blocking-b"}


def test_a_sync_call_nothing_passes_gets_the_routers_own_error(wire: Wire) -> None:
    model_list = pair("none-")
    for entry in model_list:
        entry["model_info"]["max_input_tokens"] = 20
    routing, router = wire(model_list, enable_pre_call_checks=True)
    with pytest.raises(litellm.BadRequestError):  # LiteLLM's context-window refusal
        router.completion(model="g", messages=LONG)
    assert routing.open_leases == 0


# -- the path on every response --------------------------------------------------------------


def hidden_path(response: Any) -> object:
    hidden = response._hidden_params
    return hidden.get(PATH) if isinstance(hidden, dict) else getattr(hidden, PATH, None)


def test_every_kind_of_response_carries_the_path_before_the_caller_reads_it(wire: Wire) -> None:
    routing, router = wire(example(mock_response="ok"))
    glm = f"fast/glm-4.7 > {ids_by_model(routing)['cerebras/zai-glm-4.7']}"

    async def run() -> list[Any]:
        stream = await router.acompletion(model="fast/glm-4.7", messages=MESSAGES, stream=True)
        assert hidden_path(stream) == glm  # the wrapper says it before its first chunk
        async for _ in stream:
            pass
        responses = [
            stream,
            await router.acompletion(model="fast/glm-4.7", messages=MESSAGES),
            await router.aembedding(model="fast/glm-4.7", input=["hi"], mock_response=[0.1]),
            await router.atext_completion(model="fast/glm-4.7", prompt="hi"),
            await router.aresponses(model="fast/glm-4.7", input="hi"),
        ]
        await settled(routing)
        return responses

    # glm's rpm is 5; `fast` reaches glm only through fast/glm-4.7, so its path says so.
    for response in asyncio.run(run()):
        assert hidden_path(response) == routing.path_of(response) == glm
    sync_stream = router.completion(model="fast", messages=MESSAGES, stream=True)
    before = hidden_path(sync_stream)
    for _ in sync_stream:
        pass
    sync_ones = [
        sync_stream,
        router.completion(model="fast", messages=MESSAGES),
        router.embedding(model="fast", input=["hi"], mock_response=[0.1]),
    ]
    assert before == hidden_path(sync_stream)
    for response in sync_ones:
        path = hidden_path(response)
        assert isinstance(path, str) and path.startswith("fast > fast/")
        assert path == routing.path_of(response)
        assert path.rsplit(" > ", 1)[1] == response._hidden_params["model_id"]
    asyncio.run(settled(routing))  # LiteLLM reports a sync stream's end from a thread


def test_detach_gives_the_router_its_own_methods_back(wire: Wire) -> None:
    routing, router = wire()
    wrapped = router.completion
    routing.detach()
    assert router.completion != wrapped
    assert "completion" not in vars(router)
    response = router.completion(model="one", messages=MESSAGES)
    assert PATH not in response._hidden_params
    routing.attach(router)  # the fixture detaches it again
    assert hidden_path(router.completion(model="one", messages=MESSAGES)) is not None


def test_path_of_reads_the_tree_for_a_response_ratetree_never_saw() -> None:
    routing = RatetreeRouting.from_model_list(pair())
    plain = litellm.Router(model_list=pair(), num_retries=0)
    response = plain.completion(model="g", messages=MESSAGES)
    # Served as `g` on `a` or `b`: the tree says which path that is. A group the tree does
    # not have, or an object that is no response, has none.
    assert routing.path_of(response) == f"g > {response._hidden_params['model_id']}"
    response._hidden_params["additional_headers"]["x-litellm-model-group"] = "elsewhere"
    assert routing.path_of(response) is None
    assert routing.path_of(object()) is None


# -- what the Router reports -----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # get_model_list is deprecated
def test_the_router_reports_each_group_with_what_the_tree_admits(wire: Wire) -> None:
    routing, router = wire(example())
    ids = ids_by_model(routing)
    gpt = {ids["groq/openai/gpt-oss-120b"], ids["cerebras/gpt-oss-120b"]}
    for group, reached, rpm in [
        ("fast", set(ids.values()), 40),
        ("fast/GPT-OSS-120b", gpt, 35),
        ("fast/glm-4.7", {ids["cerebras/zai-glm-4.7"]}, 5),
    ]:
        listed = [e["model_info"]["id"] for e in router.get_model_list(model_name=group)]
        assert sorted(listed) == sorted(reached)  # each deployment once
        assert router.get_model_group_info(group).rpm == rpm
        assert set(router.registry().names(group, kind="ids")) == reached
    assert set(router.registry().names(kind="group_set")) == {
        "fast",
        "fast/GPT-OSS-120b",
        "fast/glm-4.7",
    }
