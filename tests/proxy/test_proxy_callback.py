"""The proxy callback in-process, on a Router built the way the proxy builds one (from the
config's model_list, reference entries and all, invalid entries skipped): attaching it,
reloading configs, the path header and the one-line worker warning."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
    caplog: pytest.LogCaptureFixture, workers: int, redis: bool, warned: bool
) -> None:
    config = mocked(example_config())
    if redis:  # nothing listens: the warning is decided when the config is read
        config["router_settings"]["redis_url"] = "redis://127.0.0.1:9/0"
    with caplog.at_level("WARNING", logger="ratetree.proxy"):
        RatetreeProxy().load(config, workers=workers)
    expected = docs_block("text", 2).strip()  # the line the docs show
    # (RedisState's own check at construction warns on ratetree.redis that nothing answers.)
    told = [r.getMessage() for r in caplog.records if r.name == "ratetree.proxy"]
    assert told == ([expected] if warned else [])


def test_a_deployment_added_at_runtime_is_not_in_the_tree(callback: RatetreeProxy) -> None:
    # What docs/litellm-proxy.md lists as not supported yet: /model/new adds to the Router.
    from litellm.router_api import ChangeSet
    from litellm.types.router import Deployment

    config = mocked(example_config())
    router = proxy_router(config)
    callback.load(config)
    callback.attach(router)
    added = {"model": "openai/new", "api_key": "fake", "mock_response": "new"}
    router.apply(ChangeSet(upsert=[Deployment(model_name="new", litellm_params=added)]))
    with pytest.raises(
        litellm.BadRequestError, match="ratetree: model 'new' was added to the Router after attach"
    ):
        asyncio.run(router.acompletion(model="new", messages=MESSAGES))
