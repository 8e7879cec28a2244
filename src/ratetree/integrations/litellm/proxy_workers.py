"""The proxy's worker processes: how many there are, and saying a thing once among them.

``litellm --num_workers K`` starts K worker processes, children of the one ``litellm``
process, each importing the proxy afresh (uvicorn spawns them); the count reaches them in
the ``NUM_WORKERS`` environment variable. Nothing else is shared between them, so the first
worker to speak claims a file named after their common parent, created with ``O_EXCL``.
"""

from __future__ import annotations

import os
import tempfile

__all__ = ["first_among_workers", "workers"]


def workers() -> int:
    """The proxy's number of workers (``NUM_WORKERS``, which ``litellm`` sets; 1 without)."""
    try:
        return int(os.environ.get("NUM_WORKERS", "1"))
    except ValueError:
        return 1


def _started(pid: int) -> str:
    """When process ``pid`` started (clock ticks since boot, Linux), so a later process that
    gets the same pid is not taken for it; empty where that cannot be read."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def first_among_workers(topic: str, directory: str | None = None) -> bool:
    """True in the first of the proxy's workers to ask about ``topic`` (a file-name-safe
    word), False in the others. Never raises: where no file can be made, every worker is
    first (a line said twice rather than never)."""
    parent = os.getppid()
    name = f"ratetree-{parent}-{_started(parent)}-{topic}"
    try:
        fd = os.open(
            os.path.join(directory or tempfile.gettempdir(), name),
            os.O_CREAT | os.O_EXCL | os.O_WRONLY,
            0o600,
        )
    except FileExistsError:
        return False
    except OSError:
        return True
    os.close(fd)
    return True
