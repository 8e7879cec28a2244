"""Many waiters, random cancellations, releases and plain acquires: every token and every
slot in flight is accounted for (the clock stands still, so nothing refills)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from ratetree import Deployment, Group, Lease, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock
from waiting_helpers import turn

TPM = 100_000
RPM = 1_000
CAP = 2

SPEC = TreeSpec(
    groups=[
        Group("a", [Member(deployment="d1"), Member(deployment="d2")]),
        Group("b", [Member(deployment="d2"), Member(deployment="d3")], strategy="least-busy"),
        Group(
            "all", [Member(group="a"), Member(group="b")], limits=Limits(max_parallel_requests=5)
        ),
    ],
    deployments=[
        Deployment(d, Limits(rpm=f"{RPM}/day", tpm=f"{TPM}/day", max_parallel_requests=CAP))
        for d in ("d1", "d2", "d3")
    ],
)


async def exercise(seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    s = Scheduler(SPEC, clock=clock, rng=random.Random(seed))
    pending: list[asyncio.Task[Lease]] = []
    held: list[Lease] = []
    kept: list[Lease] = []  # every lease that was granted and not given back

    def collect() -> None:
        for task in [t for t in pending if t.done()]:
            pending.remove(task)
            if not task.cancelled():
                if isinstance(task.exception(), NoCapacity):
                    continue
                lease = task.result()
                held.append(lease)
                kept.append(lease)

    for _ in range(120):
        op = rng.random()
        if op < 0.45:
            coro = s.acquire_async(
                rng.choice(["a", "b", "all"]),
                tokens=rng.choice([0, 10, 250]),
                priority=rng.randrange(3),
                timeout=rng.choice([None, 0, 5.0]),  # 5 s never pass: the clock stands
            )
            pending.append(asyncio.create_task(coro))
        elif op < 0.6 and pending:
            rng.choice(pending).cancel()
        elif op < 0.9 and held:
            lease = held.pop(rng.randrange(len(held)))
            lease.release(tokens=lease.tokens)
            if pending and rng.random() < 0.5:  # a grant and a cancel in the same instant
                rng.choice(pending).cancel()
        else:
            lease_now = s.try_acquire(rng.choice(["a", "b", "all"]), tokens=5)
            if lease_now is not None:
                held.append(lease_now)
                kept.append(lease_now)
        await turn()
        collect()
        snap = s.snapshot()
        assert all(g.in_flight <= CAP for g in snap.deployments.values())
        assert snap.groups["all"].in_flight <= 5
        assert clock.pending <= 1  # one timer, however many wait

    for task in pending:
        task.cancel()
    await turn()
    collect()
    assert s.waiting == 0

    snap = s.snapshot()
    for d, gate in snap.deployments.items():
        mine = [lease for lease in kept if lease.deployment_id == d]
        assert gate.in_flight == sum(lease in held for lease in mine)
        rpm, tpm = gate.buckets
        assert rpm.remaining == RPM - len(mine)
        assert tpm.remaining == TPM - sum(lease.tokens for lease in mine)
    through = Counter(name for lease in held for name in set(lease.path[:-1]))
    for name in ("a", "b", "all"):
        assert snap.groups[name].in_flight == through[name]


@settings(max_examples=30)
@given(st.integers(0, 2**32))
def test_every_token_and_slot_is_accounted_for_under_random_cancellation(seed: int) -> None:
    asyncio.run(exercise(seed))
