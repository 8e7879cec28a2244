"""A throwaway ``redis-server`` on a free loopback port, for the Redis backend tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REDIS_SERVER = "redis-server"


def require() -> None:
    """Skip the calling test, saying why, when there is no redis-server to start."""
    if shutil.which(REDIS_SERVER) is None:
        pytest.skip("redis-server is not on PATH (apt-get install redis-server)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RedisServer:
    """One server process in ``directory``. ``persist`` turns on an append-only file
    synced on every write, so that a killed and restarted server keeps its data."""

    def __init__(self, directory: Path, *, persist: bool = False) -> None:
        self.directory = directory
        self.persist = persist
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it accepts connections. Raises RuntimeError
        when it exits instead."""
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.directory), "--save", "", "--logfile", ""]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        self.process = process
        assert process.stdout is not None
        lines = []
        # The server logs this line once it listens; reading blocks instead of polling.
        for line in process.stdout:
            lines.append(line)
            if "Ready to accept connections" in line:
                return
        process.wait()
        raise RuntimeError(f"redis-server exited with {process.returncode}: {''.join(lines)}")

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            assert self.process.stdout is not None
            self.process.stdout.close()
            self.process = None


def running(directory: Path, *, persist: bool = False) -> Iterator[RedisServer]:
    """A started server for a fixture to yield, killed afterwards; skips without one."""
    require()
    server = RedisServer(directory, persist=persist)
    server.start()
    yield server
    server.kill()


def redis_state_of(scheduler: object) -> Any:
    """The RedisState a scheduler was built with (its public ``state``), for its counters."""
    from ratetree import RedisState, Scheduler

    assert isinstance(scheduler, Scheduler) and isinstance(scheduler.state, RedisState)
    return scheduler.state
