"""The LiteLLM proxy with ratetree switched on by its config.yaml alone, driven over HTTP
by the ``openai`` client: a real ``litellm --config`` process on a loopback port.

One proxy serves the module (it takes several seconds to start): the packaged example
(``fast`` over ``fast/GPT-OSS-120b`` and ``fast/glm-4.7``) plus two small groups, ``tiny``
(two deployments of 1 request per minute, so the third request is refused) and ``solo``
(one deployment, one request in flight at a time). Every deployment answers with
``mock_response``; nothing leaves the machine.
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from proxy_process import ProxyProcess, example_config, missing, mocked

if missing():
    pytest.skip(str(missing()), allow_module_level=True)

import openai  # noqa: E402  (a LiteLLM dependency)

MESSAGES: Any = [{"role": "user", "content": "hi"}]
EXTRA_GROUPS = [
    {"model_name": "tiny/a", "litellm_params": {"model": "openai/tiny-a", "rpm": 1}},
    {"model_name": "tiny/b", "litellm_params": {"model": "openai/tiny-b", "rpm": 1}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/a"}},
    {"model_name": "tiny", "litellm_params": {"model": "tiny/b"}},
    {"model_name": "solo", "litellm_params": {"model": "openai/solo", "max_parallel_requests": 1}},
]


def config() -> dict[str, Any]:
    base = example_config()
    base["model_list"] += EXTRA_GROUPS
    return mocked(base)


def answers() -> dict[str, str]:
    """Deployment model string -> the text it answers with."""
    return {
        e["litellm_params"]["model"]: e["litellm_params"]["mock_response"]
        for e in config()["model_list"]
        if "mock_response" in e["litellm_params"]
    }


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyProcess]:
    process = ProxyProcess(config(), tmp_path_factory.mktemp("proxy"))
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
            assert answer in ("answer from cerebras/gpt-oss-120b", "answer from groq/openai/gpt-oss-120b")
        by_group[path[1]] += 1
    assert sum(by_group.values()) == 8


def test_a_member_group_is_served_directly(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fast/glm-4.7", messages=MESSAGES)
    assert raw.headers["x-ratetree-path"].startswith("fast/glm-4.7 > ")
    assert raw.parse().choices[0].message.content == "answer from cerebras/zai-glm-4.7"


def test_models_lists_the_umbrella_group(client: openai.OpenAI) -> None:
    listed = {model.id for model in client.models.list()}
    assert {"fast", "fast/GPT-OSS-120b", "fast/glm-4.7", "tiny", "solo"} <= listed


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
    # solo admits one request in flight: each stream must be settled before the next is
    # admitted, so unsettled streams would turn the later requests into 429s.
    for _ in range(4):
        stream = client.chat.completions.create(model="solo", messages=MESSAGES, stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        assert text == "answer from openai/solo"
        settled_or_429 = _eventually_admitted(client)
        assert settled_or_429 == "answer from openai/solo"


def _eventually_admitted(client: openai.OpenAI, tries: int = 50) -> str | None:
    """A plain request to solo, retried on 429 while the stream before it settles: LiteLLM
    reports a stream's end from a background task, which may run just after the client
    read the last chunk."""
    for _ in range(tries):
        try:
            answer = client.chat.completions.create(model="solo", messages=MESSAGES)
        except openai.RateLimitError as refused:
            assert "retry-after" not in refused.response.headers  # held by the open stream
            client.models.list()  # one round trip for the proxy's background task
            continue
        return answer.choices[0].message.content
    return None


def test_the_proxy_logs_no_error_for_reference_entries(proxy: ProxyProcess) -> None:
    log = proxy.log()
    assert "Application startup complete" in log
    assert "LLM Provider NOT provided" not in log


BAD_CONFIGS = {
    "a reference cycle": (
        [
            {"model_name": "a", "litellm_params": {"model": "b"}},
            {"model_name": "b", "litellm_params": {"model": "a"}},
        ],
        {},
        "ratetree: model_list[1] (model_name 'b'): reference to 'a' closes a cycle: a -> b -> a",
    ),
    "an unknown strategy": (
        [{"model_name": "a", "litellm_params": {"model": "openai/a"}}],
        {"routing_strategy": "fastest-first"},
        "ratetree: routing_strategy 'fastest-first' is not supported; use one of",
    ),
}


def test_a_bad_config_stops_the_proxy_with_one_clear_line(tmp_path: Path) -> None:
    started = []
    for model_list, router_settings, _ in BAD_CONFIGS.values():
        config = mocked({"model_list": model_list, "router_settings": router_settings})
        process = ProxyProcess(config, tmp_path)
        started.append((process, process.spawn()))  # both at once: each takes seconds to fail
    try:
        for (process, popen), (_, _, line) in zip(started, BAD_CONFIGS.values(), strict=True):
            status = popen.wait(timeout=180)
            log = process.log()
            assert status != 0
            ours = [text for text in log.splitlines() if text.startswith("ratetree: ")]
            assert len(ours) == 1, log
            assert ours[0].startswith(line)
            assert "Uvicorn running" not in log  # it never served
    except subprocess.TimeoutExpired:
        pytest.fail("a proxy with a bad config kept running")
    finally:
        for process, _ in started:
            process.stop()


def test_path_header_names_groups_in_order(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(model="fast", messages=MESSAGES)
    assert re.fullmatch(r"fast > fast/(GPT-OSS-120b|glm-4\.7) > [0-9a-f]{64}", raw.headers["x-ratetree-path"])
