"""Running Python code in a subprocess under memory and CPU limits, so a test of hostile
input fails (rather than hangs or takes the machine's memory) when a limit is missing."""

from __future__ import annotations

import resource
import subprocess
import sys
from collections.abc import Callable

MEMORY = 256 * 1024 * 1024  # bytes of address space
CPU_SECONDS = 20  # generous: the cases that fail without the fixes need minutes or more


def _limits(memory: int, cpu_seconds: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))

    return apply


def run_python(
    code: str, *args: str, memory: int = MEMORY, cpu_seconds: int = CPU_SECONDS
) -> subprocess.CompletedProcess[str]:
    """``python -c code *args`` under the limits; the result holds status and output.
    A process killed by the CPU limit ends with a negative status (SIGXCPU or SIGKILL)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        preexec_fn=_limits(memory, cpu_seconds),
        timeout=10 * cpu_seconds,  # a wall-clock guard on a busy machine
        check=False,
    )


def run_cli(
    *argv: str, memory: int = MEMORY, cpu_seconds: int = CPU_SECONDS
) -> subprocess.CompletedProcess[str]:
    """``ratetree *argv`` under the limits."""
    code = "import sys; from ratetree.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return run_python(code, *argv, memory=memory, cpu_seconds=cpu_seconds)
