"""pytest-benchmark cases for stacked diamonds (``diamonds.py``): one sub-group reachable
along 2**depth paths. "ample": acquire(tokens=600) + release, admitted; "exhausted": the
same request refused after selection has ruled out every path, with its retry_after.
Selection remembers the groups that failed this request, so both cost the tree's groups
and references, not its paths.

    .venv/bin/python -m pytest benchmarks/test_diamonds.py --benchmark-columns=mean,median
"""

from __future__ import annotations

from typing import Any

import pytest

from diamonds import REFUSED, TOP, build_diamonds
from ratetree import NoCapacity


@pytest.mark.parametrize("fullness", ["ample", "exhausted"])
@pytest.mark.parametrize("depth", [5, 10, 20])
def test_diamonds(benchmark: Any, depth: int, fullness: str) -> None:
    scheduler = build_diamonds(depth, exhausted=fullness == "exhausted")
    acquire = scheduler.acquire

    def ample() -> None:
        acquire(TOP, tokens=REFUSED).release()

    def exhausted() -> None:
        try:
            acquire(TOP, tokens=REFUSED)
        except NoCapacity:
            return
        raise AssertionError("an exhausted tree admitted a request")

    benchmark.group = f"diamonds {fullness}"
    benchmark.extra_info.update(case="diamonds", size=depth, strategy="shuffle", fullness=fullness)
    benchmark(ample if fullness == "ample" else exhausted)
