"""Two proxy workers sharing ratetree's limits through Redis: ``litellm --num_workers 2``
with ``router_settings.redis_url``, each worker building its own tree over the same keys.

``tiny`` admits two requests a minute in all. Without Redis each worker would admit two
of its own; with it, the requests spread over both workers still get two answers between
them and 429s after that.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import redis_server
from proxy_process import ProxyProcess, missing, mocked

if missing():
    pytest.skip(str(missing()), allow_module_level=True)

import httpx

TINY = [
    {"model_name": "tiny/a", "litellm_params": {"model": "openai/tiny-a", "rpm": 1}},
    {"model_name": "tiny/b", "litellm_params": {"model": "openai/tiny-b", "rpm": 1}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/a"}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/b"}},
]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    redis_server.require()
    server = redis_server.RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


def test_two_workers_share_the_limits_through_redis(redis_url: str, tmp_path: Path) -> None:
    config = mocked({"model_list": TINY, "router_settings": {"redis_url": redis_url}})
    proxy = ProxyProcess(config, tmp_path, workers=2)
    proxy.start()
    try:
        statuses = []
        for _ in range(8):
            # A new connection each time, so the requests spread over both workers.
            response = httpx.post(
                f"{proxy.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {proxy.master_key}"},
                json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}]},
                timeout=60,
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) > 0
        assert sorted(statuses) == [200, 200] + [429] * 6
        assert "each worker enforces the limits on its own" not in proxy.log()
    finally:
        proxy.stop()
