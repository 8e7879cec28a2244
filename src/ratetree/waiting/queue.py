"""Requests that wait for capacity: one queue per scheduler, served in a fixed order the
moment capacity for its head can appear.

**Order.** Waiters are kept by ``(priority, arrival)``: a lower priority first, first come
first served within one priority, across every group. A pass over the queue tries each
waiter in that order. A waiter that cannot be admitted *reserves its place*: no later
waiter whose group reaches any of the same deployments is tried in that pass (nor is a
plain :meth:`Scheduler.acquire`), so a large request is never starved by small ones
taking the capacity it is waiting to accumulate, and waiters on groups that share
deployments are served in one consistent order. Waiters on groups that share nothing do
not hold each other up.

**When a pass runs.** Only when capacity can have appeared: a lease is released or fails,
a waiter leaves the queue (served, cancelled, timed out), the scheduler is reconfigured,
or the timer fires. A pass looks only at the waiters linked to the change (see
``index.WaiterIndex.linked``) and those whose moment or deadline has come; every other
waiter would come out of a pass over the whole queue exactly as it went in. The timer
is one per scheduler (see ``_timers``), armed for the earliest of the moments at which a
blocked waiter could be admitted if nothing else happens (``earliest``, the same exact
moment a refusal's ``retry_after`` names: a bucket refilled, a cooldown over) and the
waiters' deadlines. A waiter blocked only by leases in flight has no such moment; the
release that frees one runs the pass.

**Deadlines and cancellation.** A waiter whose deadline passes ends with NoCapacity. A
waiter that leaves without its lease (cancelled, or its thread interrupted) after the lease
was granted gives everything back: its request, its tokens and its slot.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from ratetree.clocks import Clock
from ratetree.core.buckets import NEVER
from ratetree.core.explain import WaiterSnapshot
from ratetree.core.gates import GroupState
from ratetree.core.leases import Lease
from ratetree.core.selection import earliest
from ratetree.core.validate import finite, number
from ratetree.errors import NoCapacity
from ratetree.state.base import Moment
from ratetree.waiting.index import Blocked, WaiterIndex
from ratetree.waiting.timers import Timer, make_timer

if TYPE_CHECKING:  # asyncio is imported where a wait starts: `import ratetree` stays light
    import asyncio

# When a blocked head looks admissible now (it should not happen: selection and
# ``earliest`` read the same state), look again after this long rather than spin.
MIN_REARM = 1e-3


class Waiter:
    """One request waiting in the queue, and how it ended."""

    __slots__ = (
        "error",
        "expires_at",
        "fail_fast",
        "group",
        "lease",
        "notify",
        "priority",
        "queued",
        "root",
        "seq",
        "since",
        "tokens",
        "wake",
    )

    def __init__(
        self, group: str, root: GroupState, tokens: float, priority: float, fail_fast: bool
    ) -> None:
        self.group = group
        self.root = root
        self.tokens = tokens
        self.priority = priority
        self.fail_fast = fail_fast
        self.seq = 0
        self.since = 0.0  # when it joined the queue
        # Its part in the timer: the moment it could be served (unless queued behind
        # another waiter) or its deadline, whichever is first. NaN until a pass sets it.
        self.wake = math.nan
        self.expires_at = NEVER
        self.queued = False
        self.lease: Lease | None = None
        self.error: BaseException | None = None
        self.notify: Callable[[], None] = _nothing

    def snapshot(self, now: float) -> WaiterSnapshot:
        return WaiterSnapshot(self.group, self.priority, self.tokens, now - self.since)

    def outcome(self) -> Lease:
        if self.lease is None:
            assert self.error is not None
            raise self.error
        lease, self.lease = self.lease, None
        return lease


def _nothing() -> None:
    pass


class Admission(Protocol):
    """What the queue needs of its scheduler's state (``state.memory.LocalState``)."""

    @property
    def clock(self) -> Clock: ...

    def locked(self) -> AbstractContextManager[Moment]: ...

    def resolve(self, group: str, tokens: float) -> GroupState: ...

    def admit(
        self, group: str, root: GroupState, tokens: float, now: float, horizon: float
    ) -> Lease | None: ...

    def take_back(self, lease: Lease, now: float, horizon: float) -> None: ...


class WaitQueue:
    """The waiters of one scheduler. Every method but ``join``, ``leave`` and
    ``on_timer`` (which take it) runs under the scheduler's lock.

    Waiters are indexed by the deployments their groups reach (``WaiterIndex``): a pass
    after a change of capacity looks only at the waiters linked to it, and a waiter's
    part in the timer is kept in a heap, so queued waiters on other groups cost a release
    nothing. ``index`` is for tests that compare with passes over the whole queue.
    """

    __slots__ = ("_armed", "_host", "_index", "_seq", "_timer", "_wakes", "entries")

    def __init__(self, host: Admission, index: WaiterIndex[Waiter] | None = None) -> None:
        self._host = host
        self.entries: list[tuple[float, int, Waiter]] = []  # sorted by (priority, seq)
        self._index: WaiterIndex[Waiter] = index if index is not None else WaiterIndex()
        # (wake, seq, waiter) for every queued waiter, and stale ones (a waiter gone or
        # its wake changed since) dropped when they reach the top.
        self._wakes: list[tuple[float, int, Waiter]] = []
        self._seq = 0
        self._armed = NEVER
        self._timer: Timer | None = None

    def __len__(self) -> int:
        return len(self.entries)

    def join(
        self,
        group: str,
        tokens: float,
        timeout: float | None,
        rank: float,
        fail_fast: bool,
        notify: Callable[[], None],
    ) -> Waiter:
        """Queue a waiter that calls ``notify`` when it ends and run a pass (which may
        end it at once). The group is looked up under the same lock that queues it.
        Raises UnknownGroup, or InvalidRequest for tokens no path can ever hold; if the
        pass raises (a timer thread that cannot start), the waiter is not left queued."""
        with self._host.locked() as moment:
            now, horizon = moment.now, moment.horizon
            root = self._host.resolve(group, tokens)
            waiter = Waiter(group, root, tokens, rank, fail_fast)
            waiter.notify = notify
            waiter.since = now
            if timeout is not None:
                waiter.expires_at = now + timeout
            self._seq += 1
            waiter.seq = self._seq
            waiter.queued = True
            bisect.insort(self.entries, (waiter.priority, waiter.seq, waiter))
            self._index.add(waiter)
            try:
                self.serve(now, horizon, self._index.reach(root))
            except BaseException:  # nobody will wait for it: take it out again
                if waiter.queued:
                    self._remove(waiter)
                elif waiter.lease is not None:
                    self._host.take_back(waiter.lease, now, horizon)
                    waiter.lease = None
                raise
        return waiter

    def leave(self, waiter: Waiter) -> None:
        """The waiter's caller stopped waiting: give back a lease granted to it, or drop
        it from the queue, and let the waiters behind it move up."""
        with self._host.locked() as moment:
            now, horizon = moment.now, moment.horizon
            if waiter.lease is not None:
                self._host.take_back(waiter.lease, now, horizon)
                self.released(waiter.lease, now, horizon)
                waiter.lease = None
            elif waiter.queued:
                self._remove(waiter)
                self.serve(now, horizon, self._index.reach(waiter.root))

    def released(self, lease: Lease, now: float, horizon: float) -> None:
        """``lease`` gave its capacity back: run a pass over the waiters it concerns."""
        gates = lease.gates
        if gates[0].retired:  # granted before a reconfiguration: its gates may be gone
            self.serve(now, horizon)
        elif self._armed <= horizon or self._index.waits_on(gates[-1].name):
            self.serve(now, horizon, (gates[-1].name,))
        # else no waiter can use what was released, and none is due: nothing changes

    def holds(self, root: GroupState, now: float, horizon: float) -> bool:
        """Whether a plain acquire on ``root`` must leave capacity to queued waiters."""
        if self._armed <= horizon:  # the timer is due but has not run yet: serve first
            self.serve(now, horizon, ())
        return self._index.holds(root)

    def ahead(
        self, root: GroupState, now: float, horizon: float
    ) -> tuple[WaiterSnapshot, int] | None:
        """The first queued waiter (in the order of service) that holds capacity a
        request to ``root`` would need, and how many such waiters there are; None when
        none does. Runs the pass a due timer would, as ``holds`` does."""
        if not self.entries:
            return None
        if self._armed <= horizon:
            self.serve(now, horizon, ())
        found = self._index.overlapping(root)
        if not found:
            return None
        return min(found, key=_place).snapshot(now), len(found)

    def on_timer(self) -> None:
        with self._host.locked() as moment:
            self._armed = NEVER
            self.serve(moment.now, moment.horizon, ())

    def regroup(self, now: float, horizon: float) -> None:
        """After a reconfiguration: find each waiter's group in the new tree (ending those
        whose group is gone or can no longer hold their tokens) and run a pass."""
        self._index.clear()
        kept = []
        for entry in self.entries:
            w = entry[2]
            try:
                w.root = self._host.resolve(w.group, w.tokens)
            except (KeyError, ValueError) as err:
                w.queued = False
                self._end(w, err)
            else:
                kept.append(entry)
                self._index.add(w)
        self.entries = kept
        self.serve(now, horizon)

    def serve(self, now: float, horizon: float, deployments: Iterable[str] | None = None) -> None:
        """One pass in order over the waiters linked to ``deployments`` (whose capacity
        changed), or over the whole queue (None), and over those whose moment or deadline
        has come: admit whom it can, end whom time is up for, and arm the timer for the
        next moment anything can change. Every other waiter would come out of the pass as
        it went in (see ``WaiterIndex.linked``)."""
        if deployments is None:
            batch = list(self.entries)
        else:
            linked = self._index.linked(self._due(horizon, deployments))
            if len(linked) == len(self.entries):
                batch = list(self.entries)
            else:
                batch = sorted([(w.priority, w.seq, w) for w in linked])
        host = self._host
        blocked: Blocked[Waiter] = Blocked(self._index)
        for entry in batch:
            w = entry[2]
            root = w.root
            if root in blocked.ready:
                ready = blocked.ready[root]
                behind = True
            else:
                ahead = blocked.ahead(root)
                behind = ahead is not None
                if ahead is None:
                    lease = host.admit(w.group, root, w.tokens, now, horizon)
                    if lease is not None:
                        self._remove(w)
                        self._grant(w, lease, now, horizon)
                        continue
                    ready = earliest(root, w.tokens)
                else:
                    ready = blocked.ready[ahead]
            if w.expires_at <= horizon or (w.fail_fast and ready > w.expires_at):
                if behind:  # its own buckets may be ready sooner than the queue ahead
                    ready = max(ready, earliest(root, w.tokens))
                self._remove(w)
                self._end(w, NoCapacity(w.group, None if ready == NEVER else max(0.0, ready - now)))
                continue
            blocked.block(root, ready)
            wake = ready if not behind and ready < w.expires_at else w.expires_at
            if wake != w.wake:
                w.wake = wake
                heapq.heappush(self._wakes, (wake, w.seq, w))
        self._arm(now, horizon, self._next_wake())

    # -- internals ----------------------------------------------------------------------

    def _grant(self, w: Waiter, lease: Lease, now: float, horizon: float) -> None:
        w.lease = lease
        try:
            w.notify()
        except RuntimeError:  # its event loop is closed: nobody will take the lease
            self._host.take_back(lease, now, horizon)
            w.lease = None

    def _end(self, w: Waiter, error: BaseException) -> None:
        w.error = error
        with contextlib.suppress(RuntimeError):  # a closed event loop: nobody to tell
            w.notify()

    def _remove(self, w: Waiter) -> None:
        """Take ``w`` out of the queue and the index."""
        entries = self.entries
        i = bisect.bisect_left(entries, (w.priority, w.seq))
        assert entries[i][2] is w
        del entries[i]
        self._index.remove(w)
        w.queued = False

    def _due(self, horizon: float, deployments: Iterable[str]) -> Iterable[str]:
        """``deployments`` and those of the waiters whose wake has come by ``horizon``
        (each is then looked at again, so its wake is pushed anew)."""
        wakes = self._wakes
        if not wakes or wakes[0][0] > horizon:
            return deployments
        due = set(deployments)
        while wakes and wakes[0][0] <= horizon:
            w = heapq.heappop(wakes)[2]
            if w.queued and w.wake <= horizon:
                w.wake = math.nan
                due.update(self._index.reach(w.root))
        return due

    def _next_wake(self) -> float:
        """The earliest wake of a queued waiter (NEVER when none), stale entries dropped."""
        wakes = self._wakes
        if len(wakes) > 2 * len(self.entries) + 64:  # mostly stale: rebuild
            wakes[:] = [(w.wake, w.seq, w) for _, _, w in self.entries if w.wake == w.wake]
            heapq.heapify(wakes)
        while wakes:
            wake, _, w = wakes[0]
            if w.queued and w.wake == wake:
                return wake
            heapq.heappop(wakes)
        return NEVER

    def _arm(self, now: float, horizon: float, when: float) -> None:
        if when <= horizon:
            when = now + MIN_REARM
        if when == self._armed:
            return
        self._armed = when
        if self._timer is None:
            if when == NEVER:
                return
            self._timer = make_timer(self._host.clock, self.on_timer)
        if when == NEVER:
            self._timer.disarm()
        else:
            self._timer.arm(when)


def _place(w: Waiter) -> tuple[float, int]:
    return w.priority, w.seq


def check_wait(timeout: object, priority: object) -> tuple[float | None, float]:
    """``timeout`` and ``priority`` validated. Raises InvalidRequest for a timeout that is
    not None or a finite number >= 0, or a priority that is not a finite number."""
    wait_for = None if timeout is None else number(timeout, "timeout")
    return wait_for, finite(priority, "priority")


async def wait_async(
    queue: WaitQueue,
    group: str,
    tokens: object,
    timeout: object,
    priority: object,
    fail_fast: bool,
) -> Lease:
    """Wait in ``queue`` on an event loop. Raises as ``Scheduler.acquire_async`` does."""
    import asyncio

    wait_for, rank = check_wait(timeout, priority)
    amount = number(tokens, "tokens")
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    waiter = queue.join(group, amount, wait_for, rank, fail_fast, _resolver(loop, future))
    try:
        await future
    except GeneratorExit:
        # The task was collected unfinished (its event loop closed). Collection can run
        # in any thread at any allocation, even one holding the scheduler's lock, which
        # ``leave`` takes: leave from a thread of its own, which waits for the lock.
        threading.Thread(target=queue.leave, args=(waiter,), name="ratetree-leave").start()
        raise
    except BaseException:  # cancelled: take nothing
        queue.leave(waiter)
        raise
    return waiter.outcome()


def wait_blocking(
    queue: WaitQueue,
    group: str,
    tokens: object,
    timeout: object,
    priority: object,
    fail_fast: bool,
) -> Lease:
    """Wait in ``queue`` on this thread. Raises as ``Scheduler.acquire_wait`` does."""
    wait_for, rank = check_wait(timeout, priority)
    amount = number(tokens, "tokens")
    done = threading.Event()
    waiter = queue.join(group, amount, wait_for, rank, fail_fast, done.set)
    try:
        # No timeout here: the scheduler's one timer ends the wait at its deadline.
        done.wait()
    except BaseException:  # interrupted: take nothing
        queue.leave(waiter)
        raise
    return waiter.outcome()


def _resolver(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> Callable[[], None]:
    """A callable that wakes ``future``'s task from any thread."""
    home = threading.get_ident()

    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    def notify() -> None:
        if threading.get_ident() == home:
            resolve()
        else:
            loop.call_soon_threadsafe(resolve)

    return notify
