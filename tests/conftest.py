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

from hypothesis import HealthCheck, settings

# Both everyday profiles replay the same examples on every run: a red test stays red.
_REPEATABLE = settings(derandomize=True, deadline=None, max_examples=100, print_blob=True)
settings.register_profile("ci", _REPEATABLE, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", _REPEATABLE)
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
