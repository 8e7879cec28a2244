"""A state machine over random trees with waiters: after every step ``Scheduler.waiting``
equals the number of waits still pending (counted outside the scheduler), through grants,
timeouts, fail-fast ends, cancellations, reconfigurations and refused arguments; and
``explain`` always agrees with the ``try_acquire`` that follows it."""

from __future__ import annotations

import asyncio
import random

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ratetree import Lease, NoCapacity, Scheduler, TreeSpec, UnknownGroup
from ratetree.testing import FakeClock
from strategies import tree_specs
from waiting_helpers import turn

TOKENS = st.sampled_from([0, 1, 7, 100])


class WaitingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.pending: list[asyncio.Task[Lease]] = []
        self.groups: dict[asyncio.Task[Lease], str] = {}  # what each pending task waits on
        self.held: list[Lease] = []
        self.names: tuple[str, ...] = ()
        self.s: Scheduler

    @initialize(spec=tree_specs(), seed=st.integers(0, 2**32))
    def build(self, spec: TreeSpec, seed: int) -> None:
        self.s = Scheduler(spec, clock=self.clock, rng=random.Random(seed))
        self.names = tuple(g.name for g in spec.groups)

    def settle(self) -> None:
        """Let every woken task run, and keep the leases of those that got one."""
        self.loop.run_until_complete(turn())
        for task in [t for t in self.pending if t.done()]:
            self.pending.remove(task)
            self.groups.pop(task, None)
            if task.cancelled():
                continue
            error = task.exception()
            if error is None:
                event("wait: granted")
                self.held.append(task.result())
            else:
                assert isinstance(error, (NoCapacity, UnknownGroup, ValueError)), error

    @rule(
        data=st.data(),
        tokens=TOKENS,
        priority=st.integers(0, 2),
        timeout=st.sampled_from([None, 0.0, 0.5, 30.0]),
        fail_fast=st.booleans(),
    )
    def wait(
        self,
        data: st.DataObject,
        tokens: int,
        priority: int,
        timeout: float | None,
        fail_fast: bool,
    ) -> None:
        group = data.draw(st.sampled_from(self.names))
        wait = self.s.acquire_async(
            group, tokens=tokens, priority=priority, timeout=timeout, fail_fast=fail_fast
        )
        task = self.loop.create_task(wait)
        self.pending.append(task)
        self.groups[task] = group
        self.settle()

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        if self.pending:
            data.draw(st.sampled_from(self.pending)).cancel()
        self.settle()

    @rule(data=st.data(), fail=st.booleans(), also_cancel=st.booleans())
    def release(self, data: st.DataObject, fail: bool, also_cancel: bool) -> None:
        if self.held:
            lease = self.held.pop(data.draw(st.integers(0, len(self.held) - 1)))
            if fail:
                lease.fail(retry_after=data.draw(st.sampled_from([None, 0.5, 5.0])))
            else:
                lease.release(tokens=data.draw(st.sampled_from([None, 0, lease.tokens])))
            if also_cancel and self.pending:  # a grant and a cancel in the same instant
                data.draw(st.sampled_from(self.pending)).cancel()
        self.settle()

    @rule(seconds=st.sampled_from([1e-3, 0.5, 1.0, 7.0, 60.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.settle()

    @rule(data=st.data(), tokens=TOKENS)
    def explain_then_acquire(self, data: st.DataObject, tokens: int) -> None:
        live = [g for g in self.groups.values() if g in self.names]  # often: a waiter's
        group = data.draw(st.sampled_from(live + list(self.names)[: max(1, len(live))]))
        explained = self.s.explain(group, tokens)
        try:
            lease = self.s.try_acquire(group, tokens=tokens)
        except ValueError:  # more tokens than every path can hold: shown, not raised
            lease = None
        assert explained.admits == (lease is not None), str(explained)
        assert (explained.waiter is not None) == (explained.waiters_ahead > 0)
        event("explain: held for a waiter" if explained.waiter else "explain: no waiter ahead")
        if lease is not None:
            assert explained.waiter is None
            assert lease.deployment_id in explained.candidates
            self.held.append(lease)
        self.settle()

    @rule(data=st.data(), tokens=TOKENS)
    def fill(self, data: st.DataObject, tokens: int) -> None:
        """Acquire until refused, so that the waits that follow queue."""
        group = data.draw(st.sampled_from(self.names))
        for _ in range(30):
            try:
                lease = self.s.try_acquire(group, tokens=tokens)
            except ValueError:
                break
            if lease is None:
                break
            self.held.append(lease)
        self.settle()

    @rule(spec=tree_specs())
    def reconfigure(self, spec: TreeSpec) -> None:
        self.s.reconfigure(spec)
        self.names = tuple(g.name for g in spec.groups)
        self.settle()

    @rule(data=st.data())
    def bad_wait(self, data: st.DataObject) -> None:
        """Refused arguments queue nothing."""
        group = data.draw(st.sampled_from([*self.names, "no such group"]))
        wait = self.s.acquire_async(group, tokens=data.draw(st.sampled_from([-1, 10**12])))
        self.pending.append(self.loop.create_task(wait))
        self.settle()

    @invariant()
    def waiting_counts_the_pending_waits(self) -> None:
        if self.names:
            assert self.s.waiting == len(self.pending)

    def teardown(self) -> None:
        for task in self.pending:
            task.cancel()
        if self.names:
            self.settle()
            assert self.s.waiting == 0
        self.loop.close()


WaitingMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
test_waiting_machine = WaitingMachine.TestCase
