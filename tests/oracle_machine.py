"""The state machine that checks the scheduler against a brute-force reference model
(``oracle.py``), step by step; ``test_model_against_oracle`` runs it in memory and
``test_redis_oracle`` through Redis.

A hypothesis state machine draws a random tree (``strategies.py``), then interleaves
acquires, releases, failures and clock advances, and after every step checks that the
scheduler and the oracle agree:

- an admitted request took a path the oracle admits, and no earlier order tier on the way
  had an admissible continuation; ``explain`` beforehand named exactly the deployments at
  the end of such paths;
- requests name groups or aliases; one larger than every path can hold raises ValueError;
- a refused request had no admissible path at all (work conservation), and its
  ``retry_after`` is exactly the oracle's earliest moment (``None`` iff only in-flight caps
  or oversized requests block every path); waiting exactly that long admits it, waiting a
  microsecond less does not;
- every bucket level, in-flight count, cooldown and open flag in ``snapshot()`` equals the
  oracle's (references are listed only when they carry limits);
- no request bucket ever admitted more than ``capacity + rate * interval`` over any
  interval, and no bucket is in debt unless a settle charged extra tokens.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from oracle import Oracle, OracleGate, window_overruns
from ratetree import (
    BucketSnapshot,
    GateSnapshot,
    Lease,
    NoCapacity,
    Scheduler,
    TreeSpec,
)
from ratetree.testing import FakeClock
from strategies import (
    TreeModel,
    tree_models,
)

RETRY_TOL = 1e-6


def _close(a: float, b: float, scale: float = 1.0) -> bool:
    if a == b:
        return True
    return abs(a - b) <= 1e-6 * max(1.0, scale)


@dataclass
class LeaseRecord:
    lease: Lease
    path: tuple[str, ...]
    tokens: float


class SchedulerVsOracle(RuleBasedStateMachine):
    model: TreeModel
    oracle: Oracle

    @initialize(
        model=tree_models(),
        start=st.sampled_from([0.0, 1000.25, 1e6 + 0.5]),
        seed=st.integers(0, 2**32 - 1),
        allowed_fails=st.integers(0, 3),
        cooldown_time=st.sampled_from([0.0, 1.0, 5.0]),
    )
    def build(
        self,
        model: TreeModel,
        start: float,
        seed: int,
        allowed_fails: int,
        cooldown_time: float,
    ) -> None:
        self.model = model
        self.clock = FakeClock(start)
        self.scheduler = self.make_scheduler(
            model.to_spec(),
            clock=self.clock,
            rng=random.Random(seed),
            allowed_fails=allowed_fails,
            cooldown_time=cooldown_time,
        )
        self.oracle = Oracle(
            model, start=start, allowed_fails=allowed_fails, cooldown_time=cooldown_time
        )
        self.open: list[LeaseRecord] = []
        self.closed: list[LeaseRecord] = []
        # The last refusal, while nothing has happened since: (group, tokens, retry_after).
        self.refusal: tuple[str, float, float | None] | None = None
        caps = {b.capacity for _, b in self.oracle.all_buckets() if b.kind == "tpm"}
        self.token_choices = sorted({0.0, 1.0, 7.0, 25.5, *caps, *(c + 1 for c in caps)})

    def make_scheduler(self, spec: TreeSpec, **options: Any) -> Scheduler:
        """The scheduler under test; a subclass runs the same checks on another backend."""
        return Scheduler(spec, **options)

    def ready(self) -> bool:
        return hasattr(self, "oracle")

    def tokens(self) -> st.SearchStrategy[float]:
        return st.sampled_from(self.token_choices) | st.floats(
            0, 320, allow_nan=False, allow_subnormal=False
        )

    # ----------------------------------------------------------------- acquire

    def acquire_and_check(self, name: str, tokens: float) -> Lease | None:
        """Acquire ``tokens`` from group or alias ``name`` and check the outcome."""
        t = self.clock()
        self.refusal = None
        group = self.model.resolve(name)
        if tokens > self.oracle.max_tokens(group):
            with pytest.raises(ValueError):
                self.scheduler.acquire(name, tokens=tokens)
            assert self.scheduler.explain(name, tokens).candidates == ()
            event("acquire: more tokens than any path holds")
            return None
        admissible = self.oracle.admissible_paths(group, tokens, t)
        candidates = self.oracle.candidates(group, tokens, t)
        explained = self.scheduler.explain(name, tokens)
        assert explained.admits == bool(admissible), (explained.admits, admissible)
        assert set(explained.candidates) == candidates, (explained.candidates, candidates)
        try:
            lease = self.scheduler.acquire(name, tokens=tokens)
        except NoCapacity as exc:
            assert not admissible, f"refused {name} tokens={tokens} though {admissible} admit"
            assert exc.group == name
            expected = self.oracle.retry_after(group, tokens, t)
            if expected is None:
                assert exc.retry_after is None, f"retry_after {exc.retry_after}, expected None"
            else:
                assert exc.retry_after is not None, f"retry_after None, expected {expected}"
                assert abs(exc.retry_after - expected) <= RETRY_TOL, (
                    f"retry_after {exc.retry_after!r}, expected {expected!r}"
                )
            self.refusal = (name, tokens, expected)
            event(f"acquire: refused, retry_after {'None' if expected is None else 'finite'}")
            return None
        assert lease.path[0] == name
        path = (group, *lease.path[1:])
        assert lease.deployment_id == path[-1]
        assert path in admissible, f"took {path}, oracle admits only {admissible}"
        violations = self.oracle.tier_violations(path, tokens, t)
        assert not violations, violations
        self.oracle.commit(path, tokens, t)
        self.open.append(LeaseRecord(lease, path, tokens))
        event(f"acquire: admitted, path length {len(path)}")
        if name != group:
            event("acquire: admitted through an alias")
        return lease

    @rule(data=st.data())
    def acquire(self, data: st.DataObject) -> None:
        group = data.draw(st.sampled_from(self.model.request_names), label="group")
        tokens = data.draw(self.tokens(), label="tokens")
        self.acquire_and_check(group, tokens)

    @rule(data=st.data(), n=st.integers(2, 8))
    def acquire_burst(self, data: st.DataObject, n: int) -> None:
        """The same request several times in a row at one instant, to drain limits."""
        group = data.draw(st.sampled_from(self.model.request_names), label="group")
        tokens = data.draw(st.sampled_from([0.0, 0.0, 1.0, 30.0]), label="tokens")
        for _ in range(n):
            self.acquire_and_check(group, tokens)

    @precondition(
        lambda self: (
            self.refusal is not None
            and self.refusal[2] is not None
            and self.refusal[2] > 2 * RETRY_TOL
        )
    )
    @rule()
    def wait_exactly_retry_after(self) -> None:
        assert self.refusal is not None
        group, tokens, retry_after = self.refusal
        assert retry_after is not None
        self.clock.advance(retry_after - RETRY_TOL)
        t = self.clock()
        assert not self.oracle.admissible_paths(self.model.resolve(group), tokens, t)
        assert self.scheduler.try_acquire(group, tokens=tokens) is None, (
            f"admitted {RETRY_TOL} s before retry_after"
        )
        self.clock.advance(RETRY_TOL)
        lease = self.acquire_and_check(group, tokens)
        assert lease is not None, "refused at exactly retry_after"
        event("waited exactly retry_after")

    # ----------------------------------------------------------------- settle

    def pick_open(self, data: st.DataObject) -> LeaseRecord:
        return self.open.pop(data.draw(st.integers(0, len(self.open) - 1), label="lease"))

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self.refusal = None
        rec = self.pick_open(data)
        actual = data.draw(st.none() | self.tokens(), label="actual tokens")
        # A reported latency only reorders latency-based picks; the oracle ignores it.
        latency = data.draw(st.none() | st.sampled_from([0.0, 0.2, 1.5, 4.0]), label="latency")
        if actual is None:
            rec.lease.release(latency=latency)
        else:
            rec.lease.release(tokens=actual, latency=latency)
        self.oracle.settle(rec.path, rec.tokens, actual, self.clock())
        assert rec.lease.released
        self.closed.append(rec)

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def fail(self, data: st.DataObject) -> None:
        self.refusal = None
        rec = self.pick_open(data)
        retry_after = data.draw(
            st.none() | st.sampled_from([0.0, 0.25, 1.0, 7.5, 30.0, 90.0]), label="retry_after"
        )
        consumed = data.draw(st.sampled_from([0.0]) | self.tokens(), label="tokens consumed")
        if consumed == 0.0 and data.draw(st.booleans(), label="default tokens"):
            rec.lease.fail(retry_after)
        else:
            rec.lease.fail(retry_after, tokens=consumed)
        self.oracle.fail(rec.path, rec.tokens, retry_after, consumed, self.clock())
        assert rec.lease.released
        self.closed.append(rec)

    @precondition(lambda self: self.closed)
    @rule(data=st.data(), how=st.sampled_from(["release", "release tokens", "fail", "fail 429"]))
    def finish_twice_is_a_no_op(self, data: st.DataObject, how: str) -> None:
        self.refusal = None
        rec = self.closed[data.draw(st.integers(0, len(self.closed) - 1), label="lease")]
        if how == "release":
            rec.lease.release()
        elif how == "release tokens":
            rec.lease.release(tokens=1000.0)
        elif how == "fail":
            rec.lease.fail()
        else:
            rec.lease.fail(1000.0, tokens=1000.0)
        # The oracle is unchanged: the invariants check the scheduler is too.

    # ----------------------------------------------------------------- time

    @rule(
        seconds=st.sampled_from([1e-6, 0.001, 0.1, 0.5, 1.0, 2.0, 10.0, 59.0, 60.0, 61.0])
        | st.floats(0, 120, allow_nan=False, allow_subnormal=False)
    )
    def advance(self, seconds: float) -> None:
        self.refusal = None
        self.clock.advance(seconds)

    @precondition(lambda self: self.oracle.next_events(self.clock()))
    @rule(data=st.data(), nudge=st.sampled_from([0.0, 0.0, -RETRY_TOL, RETRY_TOL]))
    def advance_to_a_refill_boundary(self, data: st.DataObject, nudge: float) -> None:
        """Land exactly on (or a microsecond around) the moment a bucket refills enough for
        one request, a token bucket is full or out of debt, or a cooldown ends."""
        self.refusal = None
        events = self.oracle.next_events(self.clock())
        delay = data.draw(st.sampled_from(events), label="event delay")
        self.clock.advance(max(0.0, delay + nudge))

    # ----------------------------------------------------------------- invariants

    @precondition(ready)
    @invariant()
    def snapshot_matches_oracle(self) -> None:
        snap = self.scheduler.snapshot()
        t = self.clock()
        assert snap.time == t
        assert set(snap.groups) == set(self.model.group_names)
        assert set(snap.deployments) == {d.id for d in self.model.deployments}
        refs = {r.name: r for r in snap.references}
        assert len(refs) == len(snap.references), "reference names are not unique"
        # Only references that carry limits hold state, so only those are listed.
        limited = {
            (g.name, self.model.resolve(m.target))
            for g in self.model.groups
            for m in g.members
            if m.limits
        }
        expected_refs = {
            f"{key[1]} -> {key[2]}": gate
            for key, gate in self.oracle.gates.items()
            if key[0] == "reference" and (key[1], key[2]) in limited
        }
        assert set(refs) == set(expected_refs), (sorted(refs), sorted(expected_refs))
        gates = [(snap.groups[g], self.oracle.gates[("group", g)]) for g in snap.groups]
        gates += [
            (snap.deployments[d], self.oracle.gates[("deployment", d)]) for d in snap.deployments
        ]
        gates += [(refs[n], expected_refs[n]) for n in refs]
        for got, want in gates:
            _compare_gate(got, want, t)
            # Open: a minimal request (one request, no tokens) could pass here now.
            assert got.open == self.oracle.is_open(want.key, t), (want.key, got.open)

    @precondition(ready)
    @invariant()
    def in_flight_counts_the_open_leases(self) -> None:
        counts: Counter[tuple[str, ...]] = Counter()
        for rec in self.open:
            for gate in self.oracle.gates_on(rec.path):
                counts[gate.key] += 1
        for key, gate in self.oracle.gates.items():
            assert gate.in_flight == counts[key], (key, gate.in_flight, counts[key])
            if gate.max_parallel is not None:
                assert gate.in_flight <= gate.max_parallel, key

    @precondition(ready)
    @invariant()
    def no_bucket_admits_more_than_its_rate(self) -> None:
        t = self.clock()
        for gate, bucket in self.oracle.all_buckets():
            if bucket.kind == "rpm":
                overruns = window_overruns(bucket)
                assert not overruns, (gate.key, overruns)
            if not bucket.charged:
                # Only a settle that charges extra may put a bucket in debt; an admission
                # may undershoot zero by at most what refills within the tolerance.
                assert bucket.level(t) >= -1e-6 * max(1.0, bucket.capacity), (gate.key, bucket)


def _compare_gate(got: GateSnapshot, want: OracleGate, t: float) -> None:
    name = want.key
    assert got.in_flight == want.in_flight, (name, got.in_flight, want.in_flight)
    assert got.max_parallel_requests == want.max_parallel, name
    expected_cooling = max(0.0, want.cooling_until - t)
    assert _close(got.cooling_for, expected_cooling), (name, got.cooling_for, expected_cooling)
    buckets: dict[tuple[str, float], BucketSnapshot] = {
        (b.kind, b.rate.period): b for b in got.buckets
    }
    assert len(buckets) == len(got.buckets), name
    assert set(buckets) == {(b.kind, b.period) for b in want.buckets}, name
    for b in want.buckets:
        snap = buckets[(b.kind, b.period)]
        assert snap.rate.amount == b.capacity, (name, snap.rate, b.capacity)
        level = b.level(t)
        assert _close(snap.remaining, level, b.capacity), (name, b.kind, snap.remaining, level)
