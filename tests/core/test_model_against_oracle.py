"""The scheduler against a brute-force reference model (``oracle.py``), step by step.

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
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from oracle import INF, Oracle, OracleBucket, OracleGate, window_overruns
from ratetree import Deployment, Group, Lease, Limits, Member, NoCapacity, Scheduler, TreeSpec
from ratetree.testing import FakeClock
from strategies import (
    DeploymentModel,
    GroupModel,
    LimitsModel,
    MemberModel,
    RateModel,
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


def _compare_gate(got: object, want: OracleGate, t: float) -> None:
    name = want.key
    assert got.in_flight == want.in_flight, (name, got.in_flight, want.in_flight)  # type: ignore[attr-defined]
    assert got.max_parallel_requests == want.max_parallel, name  # type: ignore[attr-defined]
    expected_cooling = max(0.0, want.cooling_until - t)
    assert _close(got.cooling_for, expected_cooling), (name, got.cooling_for, expected_cooling)  # type: ignore[attr-defined]
    buckets = {(b.kind, b.rate.period): b for b in got.buckets}  # type: ignore[attr-defined]
    assert len(buckets) == len(got.buckets), name  # type: ignore[attr-defined]
    assert set(buckets) == {(b.kind, b.period) for b in want.buckets}, name
    for b in want.buckets:
        snap = buckets[(b.kind, b.period)]
        assert snap.rate.amount == b.capacity, (name, snap.rate, b.capacity)
        level = b.level(t)
        assert _close(snap.remaining, level, b.capacity), (name, b.kind, snap.remaining, level)


# Each example is a whole run of up to 50 steps; 4x the profile's examples keeps the CI
# run (derandomized) at about 20 s while reaching deep states.
SchedulerVsOracle.TestCase.settings = settings(
    settings.default,
    max_examples=4 * settings.default.max_examples,
    stateful_step_count=50,
)
TestSchedulerAgreesWithOracle = SchedulerVsOracle.TestCase


# --------------------------------------------------------------------------- the oracle


def test_oracle_bucket_refills_continuously_and_caps_at_capacity() -> None:
    b = OracleBucket("rpm", 3, 60, start=0.0)
    b.take(1, 0.0)
    b.take(1, 0.0)
    b.take(1, 0.0)
    assert b.level(0.0) == 0
    assert b.level(10.0) == pytest.approx(0.5)
    assert b.wait(1, 10.0) == pytest.approx(10.0)
    assert b.level(1000.0) == 3
    assert b.wait(4, 1000.0) == INF


def test_oracle_tpm_bucket_in_debt_blocks_even_zero_tokens() -> None:
    b = OracleBucket("tpm", 100, 10, start=0.0)
    b.charge(150, 0.0)
    assert not b.fits(0, 0.0)
    assert b.wait(0, 0.0) == pytest.approx(5.0)
    b.refund(1000, 1.0)
    assert b.level(1.0) == 100


def test_oracle_retry_after_is_min_over_paths_of_slowest_gate() -> None:
    rpm1 = LimitsModel(rpm=(RateModel(1, 10),), rpm_raw="1/10 seconds")
    tree = TreeModel(
        groups=(
            GroupModel(
                "g0",
                (
                    MemberModel("d0", "deployment", None, None, None, LimitsModel()),
                    MemberModel("d1", "deployment", None, None, None, LimitsModel()),
                ),
                "shuffle",
                LimitsModel(),
            ),
        ),
        deployments=(
            DeploymentModel("d0", rpm1, None),
            DeploymentModel("d1", LimitsModel(max_parallel=1), None),
        ),
    )
    oracle = Oracle(tree, start=0.0, allowed_fails=3, cooldown_time=5.0)
    oracle.commit(("g0", "d0"), 0, 0.0)
    oracle.commit(("g0", "d1"), 0, 0.0)
    assert oracle.admissible_paths("g0", 0, 2.0) == []
    assert oracle.retry_after("g0", 0, 2.0) == pytest.approx(8.0)
    oracle.commit(("g0", "d0"), 0, 10.0)
    assert oracle.retry_after("g0", 0, 10.0) == pytest.approx(10.0)
    oracle.settle(("g0", "d1"), 0, None, 12.0)
    assert oracle.retry_after("g0", 0, 12.0) == 0.0


# --------------------------------------------------------------------------- edge cases


def _one_deployment(limits: Limits = Limits()) -> TreeSpec:  # noqa: B008
    return TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")])],
        deployments=[Deployment("d", limits=limits)],
    )


def test_a_failure_exactly_sixty_seconds_old_no_longer_counts() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(), clock=clock, allowed_fails=1, cooldown_time=5.0)
    s.acquire("g").fail()
    clock.advance(60.0)
    s.acquire("g").fail()  # the first failure has just left the window: 1 of 1 allowed
    assert s.try_acquire("g") is not None


def test_failures_within_sixty_seconds_beyond_allowed_fails_start_a_cooldown() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(), clock=clock, allowed_fails=1, cooldown_time=5.0)
    s.acquire("g").fail()
    clock.advance(59.5)
    s.acquire("g").fail()
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(5.0)


def test_a_tpm_bucket_in_debt_refuses_a_zero_token_request_until_repaid() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(Limits(tpm="100/10 seconds")), clock=clock)
    s.acquire("g", tokens=100).release(tokens=150)  # level -50: 5 s to climb back to 0
    with pytest.raises(NoCapacity) as info:
        s.acquire("g")
    assert info.value.retry_after == pytest.approx(5.0)
    clock.advance(5.0)
    assert s.try_acquire("g") is not None


def test_a_shorter_retry_after_does_not_shorten_a_cooldown_in_force() -> None:
    clock = FakeClock(0.0)
    s = Scheduler(_one_deployment(), clock=clock)
    first, second = s.acquire("g"), s.acquire("g")
    first.fail(30.0)
    clock.advance(1.0)
    second.fail(2.0)
    assert s.snapshot().deployments["d"].cooling_for == pytest.approx(29.0)


# --------------------------------------------------------------------------- explain


def test_explain_lists_no_candidates_when_the_requested_group_is_full() -> None:
    spec = TreeSpec(
        groups=[
            Group("g", members=[Member(deployment="d")], limits=Limits(max_parallel_requests=1))
        ],
        deployments=[Deployment("d")],
    )
    s = Scheduler(spec, clock=FakeClock())
    s.acquire("g")
    explained = s.explain("g")
    assert s.try_acquire("g") is None
    assert not explained.admits
    assert explained.candidates == ()  # acquire could choose nothing


def test_explain_lists_no_candidates_for_more_tokens_than_the_group_can_hold() -> None:
    spec = TreeSpec(
        groups=[Group("g", members=[Member(deployment="d")], limits=Limits(tpm=10))],
        deployments=[Deployment("d")],
    )
    s = Scheduler(spec, clock=FakeClock())
    explained = s.explain("g", 11)
    assert not explained.admits
    assert explained.candidates == ()
