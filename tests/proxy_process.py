"""A real LiteLLM proxy (the ``litellm`` command of this virtual environment) started on a
free loopback port with a config written for the test, for the proxy tests and
benchmarks/proxy_bench.py.

Offline: every deployment answers with LiteLLM's ``mock_response``, the model cost map is
the bundled one, and each run gets its own random master key (the proxy refuses to start
without a strong one).
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import yaml

CALLBACK = "ratetree.integrations.litellm.proxy.ratetree_proxy"
LITELLM = Path(sys.executable).with_name("litellm")
# The proxy imports a lot: ~6 s alone, several times that on a busy 2-core machine.
START_TIMEOUT = 180.0


def missing() -> str | None:
    """Why no proxy can be started here, or None when it can."""
    if not LITELLM.exists():
        return f"no {LITELLM} (pip install -e '.[proxy]')"
    # Top-level names only: finding a submodule would import LiteLLM here.
    for module in ("litellm", "fastapi", "uvicorn", "backoff", "apscheduler", "orjson"):
        if importlib.util.find_spec(module) is None:
            return f"the proxy extra is not installed: no {module} (pip install -e '.[proxy]')"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def example_config() -> dict[str, Any]:
    """The packaged example (the README's group of groups) as a proxy config, each
    deployment answering with its own model name."""
    text = resources.files("ratetree").joinpath("examples/config.yaml").read_text("utf-8")
    config: dict[str, Any] = yaml.safe_load(text)
    return config


DOCS = Path(__file__).resolve().parents[1] / "docs" / "litellm-proxy.md"


def docs_block(language: str, index: int = 0) -> str:
    """The ``index``-th fenced block of ``language`` in docs/litellm-proxy.md."""
    blocks = re.findall(rf"```{language}\n(.*?)```", DOCS.read_text(), re.S)
    text: str = blocks[index]
    return text


def docs_config() -> dict[str, Any]:
    """The config.yaml docs/litellm-proxy.md tells users to write."""
    config: dict[str, Any] = yaml.safe_load(docs_block("yaml"))
    return config


def mocked(config: dict[str, Any], *, ratetree: bool = True) -> dict[str, Any]:
    """``config`` with a fake key and a mock response (the deployment's model string) on
    every deployment that has no ``api_base`` of the test's, and the ratetree callback on
    when ``ratetree``."""
    config = copy.deepcopy(config)
    names = {entry["model_name"] for entry in config["model_list"]}
    for entry in config["model_list"]:
        params = entry["litellm_params"]
        # A deployment (not a reference) that calls no provider of the test's own
        if params["model"] not in names and "api_base" not in params:
            params.setdefault("api_key", "fake-key")
            params.setdefault("mock_response", f"answer from {params['model']}")
    callbacks = config.setdefault("litellm_settings", {}).setdefault("callbacks", [])
    if ratetree and CALLBACK not in callbacks:
        callbacks.append(CALLBACK)
    elif not ratetree and CALLBACK in callbacks:
        callbacks.remove(CALLBACK)
    return config


def environment(master_key: str) -> dict[str, str]:
    return {
        **os.environ,
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
    }


class ProxyProcess:
    """One ``litellm --config`` process. ``start`` returns once it answers."""

    def __init__(
        self,
        config: dict[str, Any],
        directory: Path,
        *,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config_path = directory / f"config-{secrets.token_hex(4)}.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.log_path = self.config_path.with_suffix(".log")
        self.port = free_port()
        self.workers = workers
        self.master_key = "sk-" + secrets.token_hex(24)
        self.env = env or {}
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The process id of the running proxy. Raises RuntimeError before ``start``."""
        if self.process is None:
            raise RuntimeError("the proxy is not running")
        return self.process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            str(LITELLM),
            "--config",
            str(self.config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--num_workers",
            str(self.workers),
        ]

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the proxy process, its output going to :attr:`log_path`."""
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**environment(self.master_key), **self.env},
            )
        return self.process

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the proxy and wait until it answers its liveness probe. Raises
        RuntimeError (with the proxy's output) when it exits or is not up in time."""
        process = self.spawn()
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            if process.poll() is not None:
                raise RuntimeError(f"the proxy exited with {process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.base_url}/health/liveliness", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the proxy did not answer within {timeout:g} s:\n{self.log()}")

    def wait_for_workers(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every worker logged that it started (``start`` returns once one
        answers). Raises RuntimeError when they do not in time."""
        give_up = time.monotonic() + timeout
        while self.log().count("Application startup complete") < self.workers:
            if time.monotonic() > give_up:
                raise RuntimeError(f"not all {self.workers} workers started:\n{self.log()}")
            time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
