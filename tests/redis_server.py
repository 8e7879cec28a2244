"""A throwaway ``redis-server`` on a free loopback port, for the Redis backend tests."""

from __future__ import annotations

import shutil
import signal
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
    synced on every write, so that a killed and restarted server keeps its data. ``extra``
    are more command-line options (``--requirepass``, ``--cluster-enabled``, TLS ...);
    with ``tls`` the port is the TLS port and the plain one is off."""

    def __init__(
        self,
        directory: Path,
        *,
        persist: bool = False,
        extra: tuple[str, ...] = (),
        tls: bool = False,
    ) -> None:
        self.directory = directory
        self.persist = persist
        self.extra = extra
        self.tls = tls
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it accepts connections. Raises RuntimeError
        when it exits instead."""
        ports = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        args = [REDIS_SERVER, *ports, "--bind", "127.0.0.1"]
        args += ["--dir", str(self.directory), "--save", "", "--logfile", ""]
        if self.persist:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        args += self.extra
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

    def pause(self) -> None:
        """Hang the server (SIGSTOP): connections stay open and nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause` (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a paused server dies only once resumed
            self.process.kill()
            self.process.wait()
            assert self.process.stdout is not None
            self.process.stdout.close()
            self.process = None


def running(
    directory: Path, *, persist: bool = False, extra: tuple[str, ...] = (), tls: bool = False
) -> Iterator[RedisServer]:
    """A started server for a fixture to yield, killed afterwards; skips without one."""
    require()
    server = RedisServer(directory, persist=persist, extra=extra, tls=tls)
    server.start()
    yield server
    server.kill()


def redis_state_of(scheduler: object) -> Any:
    """The RedisState a scheduler was built with (its public ``state``), for its counters."""
    from ratetree import RedisState, Scheduler

    assert isinstance(scheduler, Scheduler) and isinstance(scheduler.state, RedisState)
    return scheduler.state
