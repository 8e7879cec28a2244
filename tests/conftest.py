"""Hypothesis profiles for the test suite.

- ``ci``: loaded when the ``CI`` environment variable is set. Derandomized (the same
  examples on every run, no example database), no deadline (shared CI runners stall).
- ``dev``: the default. Also derandomized, so a local run is reproducible and a red test
  stays red until fixed; prints the reproduction blob on failure.
- ``thorough``: opt-in random exploration with many more examples, for hunting bugs
  (``HYPOTHESIS_PROFILE=thorough``); a failure it finds is saved to the local database.

``HYPOTHESIS_PROFILE`` overrides the choice between ``ci`` and ``dev``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

# Let test modules import the shared helpers (strategies.py, oracle.py) by plain name,
# whichever import mode pytest uses.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "dev",
    derandomize=True,
    deadline=None,
    max_examples=100,
    print_blob=True,
)
settings.register_profile(
    "thorough",
    derandomize=False,
    deadline=None,
    max_examples=2000,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)

settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
