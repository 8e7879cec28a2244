"""``Lease.renew`` on the in-memory state: nothing expires, so it does nothing, and it
still checks its argument."""

from __future__ import annotations

import pytest

from ratetree import Deployment, Group, InvalidRequest, Limits, Member, Scheduler, TreeSpec
from ratetree.testing import FakeClock


def test_renew_on_an_in_memory_scheduler_changes_nothing() -> None:
    spec = TreeSpec(
        groups=[
            Group("g", members=[Member(deployment="d")], limits=Limits(max_parallel_requests=1))
        ],
        deployments=[Deployment("d")],
    )
    clock = FakeClock(0.0)
    s = Scheduler(spec, clock=clock)
    lease = s.acquire("g")
    before = s.snapshot()
    lease.renew()
    lease.renew(5.0)
    assert s.snapshot() == before and lease.open
    with pytest.raises(InvalidRequest, match="ttl"):
        lease.renew(float("nan"))
    lease.release()
    lease.renew()  # released: still nothing
    assert s.try_acquire("g") is not None
