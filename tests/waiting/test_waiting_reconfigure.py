"""A waiter whose group a reconfiguration retired moves to the live group of the same name:
it is served there, and its lease settles on the live state."""

from __future__ import annotations

import asyncio

from ratetree import Deployment, Group, Limits, Member, TreeSpec
from ratetree.testing import FakeClock
from waiting_helpers import scheduler, turn


def capped(*ids: str) -> TreeSpec:
    return TreeSpec(
        groups=[
            Group(
                "g",
                [Member(deployment=d) for d in ids],
                limits=Limits(max_parallel_requests=1),
            )
        ],
        deployments=[Deployment(d) for d in ids],
    )


def test_a_waiter_moves_to_the_live_group_and_settles_there() -> None:
    s = scheduler(capped("d1"), FakeClock())
    holder = s.acquire("g")

    async def main() -> None:
        task = asyncio.create_task(s.acquire_async("g"))
        await turn()
        s.reconfigure(capped("d1", "d2"))  # "g" is rebuilt; the cap of one still holds
        await turn()
        assert not task.done() and s.waiting == 1
        holder.release()  # settles on the live group, which frees the waiter
        await turn()
        lease = await task
        assert lease.deployment_id in ("d1", "d2")
        assert s.snapshot().groups["g"].in_flight == 1
        lease.release()

    asyncio.run(main())
    snapshot = s.snapshot()
    assert [g.in_flight for g in (*snapshot.groups.values(), *snapshot.deployments.values())] == [
        0,
        0,
        0,
    ]
