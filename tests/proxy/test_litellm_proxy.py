"""The LiteLLM proxy with ratetree switched on by its config.yaml alone, driven over HTTP
by the ``openai`` client: a real ``litellm --config`` process on a loopback port.

One proxy serves the module (it takes several seconds to start): the packaged example
(``fast`` over ``fast/GPT-OSS-120b`` and ``fast/glm-4.7``) plus small groups, ``tiny``
(two deployments of 1 request per minute, so the third request is refused), ``solo``
(one deployment, one request in flight at a time) and ``slow`` (like solo, calling a
loopback fake provider whose streams last long). The other deployments answer with
``mock_response``; nothing leaves the machine.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy_process import (
    CALLBACK,
    ProxyProcess,
    docs_block,
    docs_config,
    example_config,
    missing,
    mocked,
)

if missing():
    pytest.skip(str(missing()), allow_module_level=True)

import httpx
import openai
from prometheus_client.parser import text_string_to_metric_families

from fake_provider import FakeProvider, serving

MESSAGES: Any = [{"role": "user", "content": "hi"}]
EXTRA_GROUPS = [
    {"model_name": "tiny/a", "litellm_params": {"model": "openai/tiny-a", "rpm": 1}},
    {"model_name": "tiny/b", "litellm_params": {"model": "openai/tiny-b", "rpm": 1}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/a"}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/b"}},
    {"model_name": "solo", "litellm_params": {"model": "openai/solo", "max_parallel_requests": 1}},
    {"model_name": "capped/a", "litellm_params": {"model": "openai/capped-a"}},
    {"model_name": "capped", "litellm_params": {"model": "capped/a"}},
    {"model_name": "meter", "litellm_params": {"model": "openai/meter", "rpm": 2}},
]
# ratetree's own key of config.yaml: a limit on the whole group capped, not on capped/a.
RATETREE = {"group_limits": {"capped": {"rpm": 1}}}


def config(api_base: str = "http://127.0.0.1:9/v1") -> dict[str, Any]:
    """The config docs/litellm-proxy.md shows (the packaged example plus the callback),
    with the small groups, ``slow`` calling the provider at ``api_base``."""
    base = docs_config()
    slow: dict[str, Any] = {"model": "openai/slow", "api_base": api_base, "api_key": "fake"}
    slow["max_parallel_requests"] = 1
    base["model_list"] += [*EXTRA_GROUPS, {"model_name": "slow", "litellm_params": slow}]
    base["ratetree"] = RATETREE
    base["litellm_settings"]["callbacks"].append("prometheus")
    return mocked(base)


def test_the_docs_config_is_the_packaged_example_plus_the_callback() -> None:
    assert docs_config() == {**example_config(), "litellm_settings": {"callbacks": [CALLBACK]}}


def answers() -> dict[str, str]:
    """Deployment model string -> the text it answers with."""
    return {
        e["litellm_params"]["model"]: e["litellm_params"]["mock_response"]
        for e in config()["model_list"]
        if "mock_response" in e["litellm_params"]
    }


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    # Streams of 60 s: far longer than any test waits for a slot the stream held.
    yield from serving(chunks=600, chunk_delay=0.1)


@pytest.fixture(scope="module")
def proxy(
    tmp_path_factory: pytest.TempPathFactory, provider: FakeProvider
) -> Iterator[ProxyProcess]:
    process = ProxyProcess(config(provider.api_base), tmp_path_factory.mktemp("proxy"))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def client(proxy: ProxyProcess) -> openai.OpenAI:
    # No client-side retries: a refusal must reach the test as it left the proxy.
    return openai.OpenAI(
        api_key=proxy.master_key, base_url=f"{proxy.base_url}/v1", max_retries=0, timeout=60
    )


def test_models_lists_the_umbrella_group(client: openai.OpenAI) -> None:
    # First of the tests on the proxy: ratetree attached while the proxy started, before
    # any request reached it.
    listed = {model.id for model in client.models.list()}
    assert {"fast", "fast/GPT-OSS-120b", "fast/glm-4.7", "tiny", "solo"} <= listed


def test_the_example_serves_fast_through_its_groups(client: openai.OpenAI) -> None:
    by_group: Counter[str] = Counter()
    for _ in range(8):
        raw = client.chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
        completion = raw.parse()
        path = raw.headers["x-ratetree-path"].split(" > ")
        # fast > fast/<group> > the deployment that answered, by the id LiteLLM reports
        assert path[0] == "fast"
        assert path[1] in ("fast/GPT-OSS-120b", "fast/glm-4.7")
        assert path[2] == raw.headers["x-litellm-model-id"]
        answer = completion.choices[0].message.content
        assert answer in answers().values()
        if path[1] == "fast/glm-4.7":
            assert answer == "answer from cerebras/zai-glm-4.7"
        else:  # GPT-OSS-120b: order 1 (cerebras) first, and 8 requests fit in its 5 rpm
            assert answer in (
                "answer from cerebras/gpt-oss-120b",
                "answer from groq/openai/gpt-oss-120b",
            )
        by_group[path[1]] += 1
    assert sum(by_group.values()) == 8


def test_a_member_group_is_served_directly(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fast/glm-4.7", messages=MESSAGES)
    assert raw.headers["x-ratetree-path"].startswith("fast/glm-4.7 > ")
    assert raw.parse().choices[0].message.content == "answer from cerebras/zai-glm-4.7"


def test_an_exhausted_group_answers_429_with_retry_after(client: openai.OpenAI) -> None:
    # tiny's two deployments each admit one request a minute.
    served = [
        client.chat.completions.with_raw_response.create(model="tiny", messages=MESSAGES)
        for _ in range(2)
    ]
    assert {r.headers["x-ratetree-path"].split(" > ")[1] for r in served} == {"tiny/a", "tiny/b"}
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="tiny", messages=MESSAGES)
    headers = refused.value.response.headers
    seconds, millis = int(headers["retry-after"]), int(headers["retry-after-ms"])
    # Whole seconds rounded up; the bucket refills one request per 60 s.
    assert 0 < millis <= 60_000
    assert seconds == -(-millis // 1000)
    assert "ratetree: no capacity in group 'tiny'" in refused.value.message


def test_streaming_works_and_settles(client: openai.OpenAI) -> None:
    # solo admits one request in flight: a stream left unsettled would refuse every later
    # request to solo (until the 600 s lease timeout), so each admission here shows the
    # stream before it was settled.
    def stream() -> str:
        chunks = client.chat.completions.create(model="solo", messages=MESSAGES, stream=True)
        return "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)

    for _ in range(4):
        assert admitted(client, stream) == "answer from openai/solo"


def admitted(client: openai.OpenAI, call: Callable[[], str], tries: int = 50) -> str:
    """``call()``, retried while solo is held by the stream before it: LiteLLM reports a
    stream's end from a background task, which may run just after the client read the
    last chunk."""
    for _ in range(tries):
        try:
            return call()
        except openai.RateLimitError as refused:
            assert "retry-after" not in refused.response.headers  # held, not rate limited
            client.models.list()  # a round trip, for the proxy's background task to run
    pytest.fail(f"solo still refused after {tries} tries: a stream was never settled")


def test_a_client_that_leaves_a_stream_frees_its_slot_at_once(client: openai.OpenAI) -> None:
    # slow admits one request in flight; its provider streams for 60 s. The client reads
    # one chunk and hangs up: whatever LiteLLM does with the provider's stream after that
    # (without the prometheus callback it reads it to the end), the next request to slow
    # is admitted within a second.
    stream = client.chat.completions.create(model="slow", messages=MESSAGES, stream=True)
    assert next(iter(stream)).choices[0].delta.content == "0 "
    stream.close()
    left = time.monotonic()
    while True:
        try:
            answer = client.chat.completions.create(model="slow", messages=MESSAGES)
            break
        except openai.RateLimitError:
            assert time.monotonic() - left < 1.0, "the stream's slot was not freed in 1 s"
    assert answer.choices[0].message.content == "answer from slow"


def test_the_proxy_logs_no_error_for_reference_entries(proxy: ProxyProcess) -> None:
    log = proxy.log()
    assert "Application startup complete" in log
    assert "LLM Provider NOT provided" not in log


CYCLE = [
    {"model_name": "a", "litellm_params": {"model": "b"}},
    {"model_name": "b", "litellm_params": {"model": "a"}},
    {"model_name": "c", "litellm_params": {"model": "openai/c"}},
]


NO_REDIS = {
    "model_list": CYCLE[2:],
    "router_settings": {"redis_url": "redis://:secret@127.0.0.1:9/0"},  # nothing listens
}


@pytest.mark.parametrize(
    ("bad", "line"), [({"model_list": CYCLE}, 0), (NO_REDIS, 2)], ids=["cycle", "no-redis"]
)
def test_a_bad_config_stops_the_proxy_with_one_clear_line(
    tmp_path: Path, bad: dict[str, Any], line: int
) -> None:
    # (An unknown routing_strategy takes the same way out: test_proxy_callback.py.)
    process = ProxyProcess(mocked(bad), tmp_path)
    try:
        status = process.spawn().wait(timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("a proxy with a bad config kept running")
    finally:
        process.stop()
    log = process.log()
    assert status != 0
    ours = [line for line in log.splitlines() if line.startswith("ratetree: ")]
    assert ours == [docs_block("text").splitlines()[line]], log  # the line the docs show
    assert "Uvicorn running" not in log  # it never served


def test_path_header_names_groups_in_order(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
    assert re.fullmatch(
        r"fast > fast/(GPT-OSS-120b|glm-4\.7) > [0-9a-f]{64}", raw.headers["x-ratetree-path"]
    )


def test_group_limits_from_the_ratetree_key_hold_the_whole_group(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="capped", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="capped", messages=MESSAGES)
    assert "no capacity in group 'capped'" in refused.value.message
    # The limit is capped's own: its member group is not held by it.
    answer = client.chat.completions.create(model="capped/a", messages=MESSAGES)
    assert answer.choices[0].message.content == "answer from openai/capped-a"


def test_the_model_listings_show_the_umbrella_groups_with_what_they_reach(
    proxy: ProxyProcess,
) -> None:
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    infos = httpx.get(f"{proxy.base_url}/model/info", headers=headers, timeout=60).json()["data"]
    fast = {row["model_info"]["id"] for row in infos if row["model_name"] == "fast"}
    members = {row["model_info"]["id"] for row in infos if row["model_name"].startswith("fast/")}
    assert len(fast) == 3 and fast == members  # fast reaches every deployment of its groups
    groups = httpx.get(f"{proxy.base_url}/model_group/info", headers=headers, timeout=60)
    by_name = {row["model_group"]: row for row in groups.json()["data"]}
    assert {"fast", "fast/GPT-OSS-120b", "fast/glm-4.7", "tiny", "capped"} <= set(by_name)
    assert set(by_name["fast"]["providers"]) == {"groq", "cerebras"}
    # /v1/models names every group once, umbrella groups too.
    models = httpx.get(f"{proxy.base_url}/v1/models", headers=headers, timeout=60).json()["data"]
    names = [row["id"] for row in models]
    assert len(names) == len(set(names))
    assert {"fast", "fast/GPT-OSS-120b", "fast/glm-4.7", "tiny", "capped"} <= set(names)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def test_model_new_needs_the_proxys_database(proxy: ProxyProcess, client: openai.OpenAI) -> None:
    # /model/new writes to the proxy's database first: without one (DATABASE_URL) LiteLLM
    # refuses it, and nothing reaches the Router or the tree.
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    new = {"model_name": "new", "litellm_params": {"model": "openai/new", "mock_response": "x"}}
    answer = httpx.post(f"{proxy.base_url}/model/new", headers=headers, json=new, timeout=60)
    assert answer.status_code == 500 and "No DB Connected" in answer.text
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="new", messages=MESSAGES)


def scrape(proxy: ProxyProcess) -> Samples:
    """The proxy's /metrics: (sample name, labels) -> value."""
    headers = {"Authorization": f"Bearer {proxy.master_key}"}
    text = httpx.get(f"{proxy.base_url}/metrics/", headers=headers, timeout=60).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def fill_of(metrics: Samples, model: str) -> list[float]:
    return [
        value
        for (name, labels), value in metrics.items()
        if name == "ratetree_bucket_fill_ratio" and ("model", model) in labels
    ]


def test_metrics_show_in_the_proxys_metrics_endpoint(
    client: openai.OpenAI, proxy: ProxyProcess
) -> None:
    # After the tests above: fast served 8 and more, tiny refused its third request.
    client.chat.completions.create(model="meter", messages=MESSAGES)  # half of its 2 rpm
    metrics = scrape(proxy)
    for _ in range(50):  # the gauges are refreshed every second
        if fill_of(metrics, "openai/meter") < [1.0]:
            break
        time.sleep(0.2)
        metrics = scrape(proxy)
    assert fill_of(metrics, "openai/meter") < [1.0]  # it refills in 30 s
    fills = [v for (n, _), v in metrics.items() if n == "ratetree_bucket_fill_ratio"]
    assert len(fills) == 6 and all(-1 <= v <= 1 for v in fills)  # the 6 deployments with rpm
    assert metrics[("ratetree_admitted_total", frozenset({("group", "fast")}))] >= 8
    refused = frozenset({("group", "tiny"), ("reason", "rate_limit")})
    assert metrics[("ratetree_refused_total", refused)] >= 1
    assert metrics[("ratetree_queue_length", frozenset())] == 0
    cooling = [v for (n, _), v in metrics.items() if n == "ratetree_cooldown_seconds"]
    assert cooling and set(cooling) == {0.0}
