"""Two proxy workers (``litellm --num_workers 2``) with ratetree, over HTTP.

With ``router_settings.redis_url`` the workers share ratetree's limits through a real
redis-server, each building its own tree over the same keys: counted on the provider's side
(a loopback fake provider the deployments call), the two together never exceed a
deployment's ``max_parallel_requests`` or rpm, and the Prometheus metrics of both add up in
the proxy's ``/metrics``. Without Redis, the workers say once, not once each, that each
enforces the limits on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy_process import ProxyProcess, missing, mocked

if missing():
    pytest.skip(str(missing()), allow_module_level=True)

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fake_provider import FakeProvider, serving

TINY = [
    {"model_name": "tiny/a", "litellm_params": {"model": "openai/tiny-a", "rpm": 1}},
    {"model_name": "tiny/b", "litellm_params": {"model": "openai/tiny-b", "rpm": 1}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/a"}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/b"}},
]
BODY = {"messages": [{"role": "user", "content": "hi"}]}
WARNING = "each worker enforces the limits on its own"


def provided(name: str, api_base: str, **limits: int) -> dict[str, Any]:
    """A deployment calling the fake provider as model ``name``."""
    params = {"model": f"openai/{name}", "api_base": api_base, "api_key": "fake", **limits}
    return {"model_name": name, "litellm_params": params}


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    yield from serving(delay=0.5)  # long enough for requests to overlap


@pytest.fixture(scope="module")
def proxy(
    redis_url: str, provider: FakeProvider, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    model_list = [
        *TINY,
        provided("par", provider.api_base, max_parallel_requests=2),
        provided("rate", provider.api_base, rpm=2),
    ]
    config = mocked({"model_list": model_list, "router_settings": {"redis_url": redis_url}})
    config["litellm_settings"]["callbacks"].append("prometheus")
    directory = tmp_path_factory.mktemp("proxy")
    metrics_dir = directory / "prometheus"
    metrics_dir.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}  # not the machine-wide default
    process = ProxyProcess(config, directory, workers=2, env=env)
    process.start()
    try:
        process.wait_for_workers()
        yield process
    finally:
        process.stop()


def post(proxy: ProxyProcess, model: str) -> httpx.Response:
    # A new connection each time, so the requests spread over both workers.
    return httpx.post(
        f"{proxy.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {proxy.master_key}"},
        json={"model": model, **BODY},
        timeout=60,
    )


async def burst(proxy: ProxyProcess, model: str, count: int) -> list[int]:
    """Send ``count`` requests at once, each on its own connection; their statuses."""

    async def one() -> int:
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(
                f"{proxy.base_url}/v1/chat/completions",
                headers={"Authorization": f"Bearer {proxy.master_key}"},
                json={"model": model, **BODY},
            )
            return response.status_code

    return list(await asyncio.gather(*(one() for _ in range(count))))


def test_two_workers_share_the_limits_through_redis(proxy: ProxyProcess) -> None:
    statuses = []
    for _ in range(8):
        response = post(proxy, "tiny")
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert int(response.headers["retry-after"]) > 0
    assert sorted(statuses) == [200, 200] + [429] * 6
    assert WARNING not in proxy.log()


def test_the_provider_never_sees_more_in_flight_than_allowed(
    proxy: ProxyProcess, provider: FakeProvider
) -> None:
    statuses = asyncio.run(burst(proxy, "par", 16))
    total, peak = provider.counts()
    assert set(statuses) <= {200, 429}
    assert 2 <= statuses.count(200) == total["par"]
    assert peak["par"] <= 2  # max_parallel_requests: 2, across both workers


def test_the_provider_never_sees_more_than_the_rpm(
    proxy: ProxyProcess, provider: FakeProvider
) -> None:
    statuses = asyncio.run(burst(proxy, "rate", 12))
    total, _ = provider.counts()
    # rpm 2 refills one request every 30 s: far longer than the burst takes.
    assert statuses.count(200) == total["rate"] == 2
    assert statuses.count(429) == 10


def test_the_metrics_of_both_workers_add_up(proxy: ProxyProcess) -> None:
    # After the tests above: tiny admitted 2 and refused 6, over both workers.
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    text = httpx.get(f"{proxy.base_url}/metrics/", headers=headers, timeout=60).text
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples[("ratetree_admitted_total", frozenset({("group", "tiny")}))] == 2
    refused = frozenset({("group", "tiny"), ("reason", "rate_limit")})
    assert samples[("ratetree_refused_total", refused)] == 6
    assert samples[("ratetree_admitted_total", frozenset({("group", "rate")}))] == 2


def test_without_redis_the_workers_warn_once(tmp_path: Path) -> None:
    proxy = ProxyProcess(mocked({"model_list": TINY}), tmp_path, workers=2)
    proxy.start()
    try:
        proxy.wait_for_workers()
        assert proxy.log().count(WARNING) == 1, proxy.log()
    finally:
        proxy.stop()
