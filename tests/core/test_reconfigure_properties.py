"""Reconfiguration on random trees: to the same spec it changes nothing a caller can see
(every snapshot figure and explanation); to any other spec, leases granted before settle
without leaving counts behind."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from ratetree import NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock
from strategies import tree_specs


@settings(max_examples=60)
@given(tree_specs(), st.integers(0, 2**32))
def test_reconfiguring_to_the_same_spec_keeps_every_figure(spec: TreeSpec, seed: int) -> None:
    rng = random.Random(seed)
    clock = FakeClock()
    s = Scheduler(spec, clock=clock, rng=random.Random(seed))
    names = [g.name for g in spec.groups]
    leases = []
    for _ in range(40):
        with contextlib.suppress(NoCapacity, ValueError):  # refused, or too many tokens
            leases.append(s.acquire(rng.choice(names), tokens=rng.choice([0, 5, 50])))
        if leases and rng.random() < 0.3:
            lease = leases.pop(rng.randrange(len(leases)))
            if rng.random() < 0.3:
                lease.fail(retry_after=rng.choice([None, 3.0]))
            else:
                lease.release(tokens=rng.choice([None, 0, 20]))
        clock.advance(rng.choice([0.0, 0.5]))
    before = s.snapshot()
    said = [str(s.explain(name, tokens)) for name in names for tokens in (0, 50)]
    s.reconfigure(spec)
    assert s.snapshot() == before
    assert [str(s.explain(name, tokens)) for name in names for tokens in (0, 50)] == said
    for lease in leases:
        lease.release()
    snap = s.snapshot()
    gates = (*snap.groups.values(), *snap.deployments.values(), *snap.references)
    assert all(g.in_flight == 0 for g in gates)


@settings(max_examples=60)
@given(tree_specs(), tree_specs(), st.integers(0, 2**32))
def test_leases_from_any_old_tree_settle_on_any_new_one_without_leaving_counts(
    old: TreeSpec, new: TreeSpec, seed: int
) -> None:
    rng = random.Random(seed)
    s = Scheduler(old, clock=FakeClock(), rng=random.Random(seed))
    leases = []
    for _ in range(30):
        with contextlib.suppress(NoCapacity, ValueError):
            leases.append(s.acquire(rng.choice(old.groups).name, tokens=rng.choice([0, 5])))
    s.reconfigure(new)
    for lease in leases:
        if rng.random() < 0.3:
            lease.fail(retry_after=rng.choice([None, 1.0]))
        else:
            lease.release(tokens=rng.choice([None, 0, 9]))
    snap = s.snapshot()
    gates = (*snap.groups.values(), *snap.deployments.values(), *snap.references)
    assert all(g.in_flight == 0 for g in gates)
    assert set(snap.deployments) == {d.id for d in new.deployments}
