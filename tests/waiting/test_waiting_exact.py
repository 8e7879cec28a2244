"""On random trees, a waiter is admitted at the moment a refusal's retry_after named."""

from __future__ import annotations

import asyncio
import random

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ratetree import NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock
from strategies import tree_specs
from waiting_helpers import turn

STEP = 1e-6  # the test's resolution: well above float error, well below any refill


# Many random trees admit 300 requests without a refusal to wait for; those are skipped
# (assume), so more inputs are filtered than Hypothesis expects by default.
@settings(max_examples=60, suppress_health_check=[HealthCheck.filter_too_much])
@given(tree_specs(), st.sampled_from([0, 1, 7, 100]), st.integers(0, 2**32))
def test_a_waiter_is_admitted_exactly_when_retry_after_said(
    spec: TreeSpec, tokens: int, seed: int
) -> None:
    clock = FakeClock()
    s = Scheduler(spec, clock=clock, rng=random.Random(seed))
    group = spec.groups[0].name
    retry_after = None
    for _ in range(300):
        try:
            s.acquire(group, tokens=tokens)
        except NoCapacity as refused:
            retry_after = refused.retry_after
            break
        except ValueError:  # more tokens than this tree can ever hold
            break
    assume(retry_after is not None and retry_after > 2 * STEP)
    assert retry_after is not None

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async(group, tokens=tokens))
        await turn()
        assert not task.done() and clock.pending == 1
        clock.advance(retry_after - STEP)
        await turn()
        assert not task.done()
        clock.advance(2 * STEP)
        await turn()
        assert task.done() and task.result().group == group

    asyncio.run(main())
