"""Latency of the LiteLLM proxy per request, with and without ratetree, in one run.

Two real proxies (``litellm --config``, one worker each) serve the packaged example with
``mock_response`` answers and limits too high to refuse anything: one as LiteLLM alone,
one with ratetree switched on in its config. Clients send chat completions over HTTP
(httpx, one keep-alive connection each) to ``fast/GPT-OSS-120b``, a plain group both can
serve, and, with ratetree, to ``fast``, the group of groups LiteLLM alone cannot serve.
For 1 and for 50 concurrent clients it prints the median and 99th percentile of the time
from sending a request to reading its whole answer, and the CPU time the proxy process
spent per request (from /proc, so it holds on a busy machine where latencies do not).
The cases take turns in ``--rounds`` rounds, so that what else runs on the machine weighs
on each alike.

    .venv/bin/python benchmarks/proxy_bench.py [--requests 400] [--warmup 50] [--rounds 5]

Needs the proxy extra (``pip install -e '.[proxy]'``). The numbers depend on the machine
and on what else runs on it; compare the two columns of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
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


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process ``pid`` and its live descendants used so far,
    from /proc (Linux): what a request costs the proxy, however busy the machine is."""
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = fields
            children.setdefault(int(fields[1]), []).append(int(entry))
    total, stack = 0.0, [pid]
    while stack:
        current = stack.pop()
        if current in stats:
            total += (int(stats[current][11]) + int(stats[current][12])) / ticks
        stack.extend(children.get(current, ()))
    return total


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="per measurement")
    parser.add_argument("--warmup", type=int, default=50, help="requests before measuring")
    parser.add_argument("--rounds", type=int, default=5, help="turns the cases take")
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
                    warmup = measure(proxies[name], model, min(clients, args.warmup), args.warmup)
                    asyncio.run(warmup)
                # Rounds taking turns, each case first in turn: a change in the machine's load
                # during the run then falls on every case alike.
                measured: dict[tuple[str, str], list[float]] = {case: [] for case in cases}
                cpu = dict.fromkeys(cases, 0.0)
                for round_ in range(args.rounds):
                    turn = cases[round_ % len(cases) :] + cases[: round_ % len(cases)]
                    for name, model in turn:
                        pid = proxies[name].pid
                        share = measure(proxies[name], model, clients, args.requests // args.rounds)
                        before = cpu_seconds(pid)
                        measured[name, model] += asyncio.run(share)
                        cpu[name, model] += cpu_seconds(pid) - before
                for (name, model), latencies in measured.items():
                    per_request = cpu[name, model] / len(latencies)
                    rows.append((name, model, clients, len(latencies), latencies, per_request))
        finally:
            for proxy in proxies.values():
                proxy.stop()
    columns = ("proxy", "model", "clients", "requests", "median ms", "p99 ms", "cpu ms/req")
    print("{:<15} {:<19} {:>7} {:>8} {:>10} {:>8} {:>10}".format(*columns))
    for name, model, clients, count, latencies, cpu_per_request in rows:
        print(
            f"{name:<15} {model:<19} {clients:>7} {count:>8} "
            f"{statistics.median(latencies) * 1000:>10.1f} {p99(latencies) * 1000:>8.1f} "
            f"{cpu_per_request * 1000:>10.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
