"""Latency of the LiteLLM proxy per request, with and without ratetree, in one run.

Two real proxies (``litellm --config``, one worker each) serve the packaged example with
``mock_response`` answers and limits too high to refuse anything: one as LiteLLM alone,
one with ratetree switched on in its config. Clients send chat completions over HTTP
(httpx, one keep-alive connection each) to ``fast/GPT-OSS-120b``, a plain group both can
serve, and, with ratetree, to ``fast``, the group of groups LiteLLM alone cannot serve.
For 1 and for 50 concurrent clients it prints the median and 99th percentile of the time
from sending a request to reading its whole answer.

    .venv/bin/python benchmarks/proxy_bench.py [--requests 400] [--warmup 50]

Needs the proxy extra (``pip install -e '.[proxy]'``). The numbers depend on the machine
and on what else runs on it; compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

# The proxy launcher the end-to-end tests use.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from proxy_process import ProxyProcess, example_config, missing, mocked

UNLIMITED_RPM = 10**9
BODY = {"messages": [{"role": "user", "content": "hi"}]}


def unlimited(ratetree: bool) -> dict[str, Any]:
    config = mocked(example_config(), ratetree=ratetree)
    for entry in config["model_list"]:
        if "rpm" in entry["litellm_params"]:
            entry["litellm_params"]["rpm"] = UNLIMITED_RPM
    return config


async def _client(base_url: str, key: str, model: str, count: int, latencies: list[float]) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:
        for _ in range(count):
            start = time.perf_counter()
            response = await client.post("/v1/chat/completions", json={"model": model, **BODY})
            response.read()
            latencies.append(time.perf_counter() - start)
            if response.status_code != 200:
                raise RuntimeError(f"{model}: HTTP {response.status_code}: {response.text[:200]}")


async def measure(proxy: ProxyProcess, model: str, clients: int, requests: int) -> list[float]:
    """Latencies (seconds) of ``requests`` requests sent by ``clients`` concurrent clients."""
    latencies: list[float] = []
    per_client = max(1, requests // clients)
    await asyncio.gather(
        *(
            _client(proxy.base_url, proxy.master_key, model, per_client, latencies)
            for _ in range(clients)
        )
    )
    return latencies


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per measurement")
    parser.add_argument("--warmup", type=int, default=50, help="requests before measuring")
    args = parser.parse_args(argv)
    reason = missing()
    if reason:
        print(f"cannot start a proxy: {reason}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        proxies = {
            "LiteLLM alone": ProxyProcess(unlimited(False), Path(directory)),
            "with ratetree": ProxyProcess(unlimited(True), Path(directory)),
        }
        try:
            for proxy in proxies.values():
                proxy.start()
            cases = [(name, "fast/GPT-OSS-120b") for name in proxies] + [("with ratetree", "fast")]
            for clients in (1, 50):
                for name, model in cases:
                    proxy = proxies[name]
                    asyncio.run(measure(proxy, model, min(clients, args.warmup), args.warmup))
                    latencies = asyncio.run(measure(proxy, model, clients, args.requests))
                    rows.append((name, model, clients, len(latencies), latencies))
        finally:
            for proxy in proxies.values():
                proxy.stop()
    columns = ("proxy", "model", "clients", "requests", "median ms", "p99 ms")
    print("{:<15} {:<19} {:>7} {:>8} {:>10} {:>8}".format(*columns))
    for name, model, clients, count, latencies in rows:
        print(
            f"{name:<15} {model:<19} {clients:>7} {count:>8} "
            f"{statistics.median(latencies) * 1000:>10.1f} {p99(latencies) * 1000:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
