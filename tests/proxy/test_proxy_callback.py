"""The proxy callback in-process, on a Router built the way the proxy builds one (from the
config's model_list, reference entries and all, invalid entries skipped): attaching it,
reloading configs, the path header and the one-line worker warning."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy_process import docs_block, example_config, missing, mocked

if missing():
    pytest.skip(str(missing()), allow_module_level=True)

import litellm
from ratetree.errors import ConfigError
from ratetree.integrations.litellm.proxy import RatetreeProxy

MESSAGES = [{"role": "user", "content": "hi"}]


def proxy_router(config: dict[str, Any]) -> Any:
    """A Router as the proxy makes it: the whole model_list, entries it cannot build skipped."""
    return litellm.Router(model_list=config["model_list"], ignore_invalid_deployments=True)


@pytest.fixture
def callback() -> Iterator[RatetreeProxy]:
    callback = RatetreeProxy()
    yield callback
    callback.detach()


def test_attaching_routes_the_umbrella_group_by_the_routers_own_ids(
    callback: RatetreeProxy,
) -> None:
    config = mocked(example_config())
    router = proxy_router(config)
    ids = set(router.registry().names(kind="ids"))
    callback.load(config)
    callback.attach(router)
    assert set(router.registry().names(kind="ids")) == ids  # nothing added: the same ids
    metadata: dict[str, Any] = {}
    response = asyncio.run(router.acompletion(model="fast", messages=MESSAGES, metadata=metadata))
    model_id = response._hidden_params["model_id"]
    assert model_id in ids
    headers = asyncio.run(
        callback.async_post_call_response_headers_hook({"metadata": metadata}, None, response)
    )
    assert headers is not None
    path = headers["x-ratetree-path"].split(" > ")
    assert path[0] == "fast" and path[-1] == model_id
    assert callback.routing is not None and callback.routing.open_leases == 0


def test_no_path_header_for_a_request_ratetree_did_not_route(callback: RatetreeProxy) -> None:
    headers = asyncio.run(callback.async_post_call_response_headers_hook({}, None, None))
    assert headers is None


def test_the_same_config_keeps_the_tree_and_a_new_one_replaces_it(callback: RatetreeProxy) -> None:
    config = mocked(example_config())
    callback.load(config)
    first = callback.routing
    callback.load(mocked(example_config()))
    assert callback.routing is first
    config["router_settings"]["routing_strategy"] = "least-busy"
    callback.load(config)
    assert callback.routing is not first


def test_a_bad_config_is_refused_and_the_tree_kept(callback: RatetreeProxy) -> None:
    config = mocked(example_config())
    callback.load(config)
    kept = callback.routing
    config["router_settings"]["routing_strategy"] = "fastest-first"
    with pytest.raises(ConfigError) as refused:
        callback.load(config)
    assert callback.routing is kept
    assert f"ratetree: {refused.value}" == docs_block("text").splitlines()[1]  # as the docs show


@pytest.mark.parametrize(
    ("workers", "redis", "warned"), [(2, False, True), (1, False, False), (2, True, False)]
)
def test_several_workers_without_redis_are_told_in_one_line(
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    workers: int,
    redis: bool,
    warned: bool,
    request: pytest.FixtureRequest,
) -> None:
    config = mocked(example_config())
    if redis:
        config["router_settings"]["redis_url"] = request.getfixturevalue("redis_url")
    with caplog.at_level("WARNING", logger="ratetree.proxy"):
        RatetreeProxy(notices=str(tmp_path)).load(config, workers=workers)
    expected = docs_block("text", 2).strip()  # the line the docs show
    told = [r.getMessage() for r in caplog.records if r.name == "ratetree.proxy"]
    assert told == ([expected] if warned else [])


def test_only_the_first_worker_says_it(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    # Two workers of one proxy: two callbacks in processes with the same parent.
    config = mocked(example_config())
    with caplog.at_level("WARNING", logger="ratetree.proxy"):
        RatetreeProxy(notices=str(tmp_path)).load(config, workers=2)
        RatetreeProxy(notices=str(tmp_path)).load(config, workers=2)
    assert len(caplog.messages) == 1


def test_an_unreachable_redis_stops_the_proxy_with_one_clear_line() -> None:
    config = mocked(example_config())
    config["router_settings"]["redis_url"] = "redis://:secret@127.0.0.1:9/0"  # nothing listens
    with pytest.raises(ConfigError) as refused:
        RatetreeProxy().load(config)
    message = str(refused.value)
    assert message.startswith("router_settings Redis redis://***@127.0.0.1:9/0 does not answer")
    assert "secret" not in message and "\n" not in message


def test_group_limits_come_from_the_ratetree_key(callback: RatetreeProxy) -> None:
    config = mocked(example_config())
    config["ratetree"] = {"group_limits": {"fast": {"rpm": 2}}}
    router = proxy_router(config)
    callback.load(config)
    callback.attach(router)
    for _ in range(2):
        asyncio.run(router.acompletion(model="fast", messages=MESSAGES))
    with pytest.raises(litellm.RateLimitError, match="no capacity in group 'fast'"):
        asyncio.run(router.acompletion(model="fast", messages=MESSAGES))
    config["ratetree"] = {"group_limit": {}}
    with pytest.raises(ConfigError, match="unknown keys 'group_limit'"):
        callback.load(config)


def added(model_name: str, model: str, **params: Any) -> Any:
    from litellm.types.router import Deployment

    litellm_params = {"model": model, "api_key": "fake", "mock_response": model, **params}
    return Deployment(model_name=model_name, litellm_params=litellm_params)


def test_a_deployment_added_at_runtime_joins_the_tree(callback: RatetreeProxy) -> None:
    # What /model/new and the proxy's database do: a deployment upserted into the Router.
    from litellm.router_api import ChangeSet

    config = mocked(example_config())
    router = proxy_router(config)
    callback.load(config)
    callback.attach(router)
    version = router.registry().version
    callback.follow(router)  # nothing changed: nothing rebuilt
    assert router.registry().version == version
    router.apply(ChangeSet(upsert=[added("new", "openai/new", rpm=1)]))
    router.apply(ChangeSet(upsert=[added("fast/glm-4.7", "openai/glm-too")]))
    callback.follow(router)
    metadata: dict[str, Any] = {}
    answer = asyncio.run(router.acompletion(model="new", messages=MESSAGES, metadata=metadata))
    assert answer.choices[0].message.content == "openai/new"
    assert metadata["ratetree_path"].startswith("new > ")
    with pytest.raises(litellm.RateLimitError, match="ratetree: no capacity in group 'new'"):
        asyncio.run(router.acompletion(model="new", messages=MESSAGES))  # its rpm: 1
    routing = callback.routing
    assert routing is not None
    reached = {
        e["litellm_params"]["model"] for e in routing.model_list if e["model_name"] == "fast"
    }
    assert "openai/glm-too" in reached  # fast reaches what joined its member group
    version = router.registry().version
    callback.follow(router)
    assert router.registry().version == version


def test_a_deployment_the_database_had_before_attach_is_kept(callback: RatetreeProxy) -> None:
    from litellm.router_api import ChangeSet

    config = mocked(example_config())
    router = proxy_router(config)
    router.apply(ChangeSet(upsert=[added("stored", "openai/stored")]))
    callback.load(config)
    callback.attach(router)
    answer = asyncio.run(router.acompletion(model="stored", messages=MESSAGES))
    assert answer.choices[0].message.content == "openai/stored"


def test_a_deployment_deleted_at_runtime_leaves_the_tree(callback: RatetreeProxy) -> None:
    from litellm.router_api import ChangeSet

    config = mocked(example_config())
    router = proxy_router(config)
    callback.load(config)
    callback.attach(router)
    glm = next(e for e in router.registry().all() if e["model_name"] == "fast/glm-4.7")
    router.apply(ChangeSet(delete=[glm["model_info"]["id"]]))
    callback.follow(router)
    routing = callback.routing
    assert routing is not None
    assert {e["model_name"] for e in routing.model_list} == {"fast", "fast/GPT-OSS-120b"}
    # fast's reference to the group that is gone went with it: fast calls no "fast/glm-4.7"
    assert {e["litellm_params"]["model"] for e in routing.model_list} == {
        "groq/openai/gpt-oss-120b",
        "cerebras/gpt-oss-120b",
    }


def test_a_deployment_updated_at_runtime_is_updated_in_the_tree(callback: RatetreeProxy) -> None:
    from litellm.router_api import ChangeSet
    from litellm.types.router import Deployment

    config = mocked(example_config())
    router = proxy_router(config)
    callback.load(config)
    callback.attach(router)
    glm = next(e for e in router.registry().all() if e["model_name"] == "fast/glm-4.7")
    params = {**glm["litellm_params"], "rpm": 1}
    update = Deployment(
        model_name="fast/glm-4.7", litellm_params=params, model_info=glm["model_info"]
    )
    router.apply(ChangeSet(upsert=[update]))
    callback.follow(router)
    routing = callback.routing
    assert routing is not None
    buckets = routing.scheduler.snapshot().deployments[glm["model_info"]["id"]].buckets
    assert [(b.kind, b.rate.amount) for b in buckets] == [("rpm", 1)]


def test_a_stream_the_client_leaves_releases_its_lease_once(callback: RatetreeProxy) -> None:
    config = mocked(example_config())
    router = proxy_router(config)
    callback.load(config)
    callback.attach(router)
    routing = callback.routing
    assert routing is not None

    async def leave_after_one_chunk() -> int:
        metadata: dict[str, Any] = {}
        upstream = await router.acompletion(
            model="fast", messages=MESSAGES, metadata=metadata, stream=True
        )
        held = routing.open_leases
        stream = callback.async_post_call_streaming_iterator_hook(
            None, upstream, {"metadata": metadata}
        )
        await anext(stream)
        await stream.aclose()  # what the proxy does when its client hangs up
        assert routing.open_leases == held - 1
        routing.abandoned({"metadata": metadata})  # a second word about it changes nothing
        assert routing.open_leases == held - 1
        async for _ in upstream:  # LiteLLM reads on to the end; its events find it settled
            pass
        return held

    assert asyncio.run(leave_after_one_chunk()) == 1
    assert routing.open_leases == 0
