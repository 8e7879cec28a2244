"""``import ratetree`` loads none of the optional or heavy modules: asyncio, redis, yaml,
litellm. Each is imported where it is used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("asyncio", "redis", "yaml", "litellm")


def test_importing_ratetree_loads_no_heavy_module() -> None:
    probe = f"import ratetree, sys; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
