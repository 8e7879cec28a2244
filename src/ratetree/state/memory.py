"""A scheduler's state in this process, and the default backend that keeps it there.

:class:`LocalState` is the view every scheduler keeps: the tree, the lock around it, the
clock reading (with the clock rule of ``ratetree.clocks``) and the few primitives that
change it. Every change goes through them, so each is atomic and bumps the version that
refusals are cached against:

- ``admit``: select, commit, version bump, Lease (acquire, the wait queue and the shared
  path all admit through it);
- ``take_back``: the inverse of a commit nobody will use;
- ``finish``: a release or a failure (the view is the Settler of its leases), settled on
  the gates the lease was admitted on (forwarded to their successors after a
  reconfiguration), then told to a shared backend and to the waiters; the lease is marked
  released only once that is done, so a clock that raises loses nothing;
- ``reconfigure``: the state carried into a new tree.

:class:`MemoryState` is the default :class:`~ratetree.state.base.StateBackend`: the view
is the whole state, so a commit is final as soon as it is made.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Callable, Collection, Iterator, Sized
from typing import Any, Protocol

import cachetools

from ratetree.clocks import Clock, SteadyReading
from ratetree.core.buckets import NEVER
from ratetree.core.build import Tree
from ratetree.core.gates import DeploymentState, GroupState, Wakeups
from ratetree.core.leases import Lease, Settler
from ratetree.core.reconfigure import forward, transfer
from ratetree.core.selection import commit, earliest, select, settle, take_back
from ratetree.core.strategies.latency_based import observe_latency
from ratetree.core.validate import FAST_TOKENS, number
from ratetree.errors import InvalidRequest, NoCapacity, UnknownGroup
from ratetree.state.base import AsyncStateBackend, AsyncTrip, Host, Moment, StateBackend, Trip

FAILURE_WINDOW = 60.0  # seconds over which LiteLLM counts allowed_fails


def group_name(group: object) -> str:
    """``group`` as a plain str, before any lock is taken: a str subclass's own hashing or
    comparison never runs inside the scheduler. Raises UnknownGroup for a non-string."""
    if isinstance(group, str):
        return str.__str__(group)
    raise UnknownGroup(group)  # type: ignore[arg-type]


def too_large(group: str, tokens: object, root: GroupState) -> InvalidRequest:
    """The error for a request larger than every path of ``root``; ``tokens`` as given."""
    return InvalidRequest(
        f"tokens={tokens!r} exceeds every path of group {group!r}: "
        f"the largest request it can ever admit is {root.max_tokens:g} tokens"
    )


class Waiters(Protocol):
    """What settling a lease needs of the wait queue (``ratetree.waiting.queue``)."""

    @property
    def entries(self) -> Sized: ...

    def released(self, lease: Lease, now: float, horizon: float) -> None: ...


class _NoWaiters:
    """The queue of a view no scheduler has given one yet."""

    __slots__ = ()
    entries = ()

    def released(self, lease: Lease, now: float, horizon: float) -> None:
        pass


def nothing() -> None:
    """The undo of a read, which has nothing to take back."""


# Attempts to take a busy lock by yielding before blocking on it; see take_contended.
SPINS = 64


def take_contended(lock: threading.Lock, pause: Callable[[], None]) -> None:
    """Take ``lock``, which another thread holds, without forming a convoy.

    Blocking at once would hand the lock, at its release, to a thread that does not hold
    the GIL: the holder runs on, asks for the lock again and blocks, and from then on
    every request pays two thread switches (measured: two threads got 55% of one thread's
    rate). Yielding the GIL (``pause``) and retrying means the lock is only ever taken by
    a running thread. The critical sections are short and never do I/O; after SPINS
    tries this blocks.
    """
    for _ in range(SPINS):
        pause()  # releases the GIL, so the holder can finish and release
        if lock.acquire(False):
            return
    lock.acquire()


class LocalState:
    """One scheduler's tree, lock and clock, and the primitives that change them. Every
    method but ``locked`` expects the caller to hold ``lock``."""

    __slots__ = (
        "allowed_fails",
        "backend",
        "clock",
        "cooldown_time",
        "horizon",
        "lock",
        "pause",
        "reading",
        "refusals",
        "rng",
        "tree",
        "version",
        "waiting",
        "wake",
    )

    def __init__(
        self,
        tree: Tree,
        clock: Clock,
        rng: random.Random,
        backend: StateBackend | AsyncStateBackend,
        allowed_fails: int,
        cooldown_time: float,
        pause: Callable[[], None],
    ) -> None:
        self.tree = tree
        # Typed to return Any, not float: compiled code would check a float return and
        # fail differently from the pure build on a clock returning something else.
        self.clock: Callable[[], Any] = clock
        self.reading = SteadyReading(clock)
        # The horizon of the reading ``begin`` took last (now + tolerance(now)): read right
        # after it, under the same hold of the lock. Kept here rather than returned with
        # now: a tuple per clock reading measured about 1% of an acquire + release.
        self.horizon = 0.0
        self.rng = rng
        self.backend = backend
        self.waiting: Waiters = _NoWaiters()  # the scheduler sets its queue
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        self.pause = pause
        self.lock = threading.Lock()
        self.wake = Wakeups()
        # Refusals repeat while nothing changes; remember the answer per (group, tokens)
        # until the next change bumps the version.
        self.version = 0
        self.refusals: cachetools.LRUCache[tuple[str, float], tuple[int, float]] = (
            cachetools.LRUCache(maxsize=1024)
        )

    # -- the lock and the clock ---------------------------------------------------------

    def begin(self) -> float:
        """Read the clock (first, so a raising clock changes nothing), set ``horizon``
        and drain the wake-ups due by it. Returns now."""
        reading = self.reading
        clock = self.clock  # a callable in a slot: a method call on it would not specialize
        raw = clock()
        now: float
        if reading.last <= raw < NEVER:  # SteadyReading.read, inlined: the hot path
            reading.last = now = raw
            reading.lag = 0.0
        else:
            now = reading.hold(raw)
        # now + tolerance(now), inlined, with abs() written out: a call costs more here.
        horizon = now + (1e-9 + (now if now >= 0.0 else -now) * 1e-15)
        heap = self.wake.heap
        if heap and heap[0][0] <= horizon:  # a wake-up is due
            self.wake.drain(horizon)
        self.horizon = horizon
        return now

    @contextlib.contextmanager
    def locked(self) -> Iterator[Moment]:
        """The lock held and the clock read, for one operation off the hot path."""
        lock = self.lock
        if not lock.acquire(False):
            take_contended(lock, self.pause)
        try:
            now = self.begin()
            yield Moment(now, self.horizon, self.wake)
        finally:
            lock.release()

    # -- the primitives -----------------------------------------------------------------

    def lookup(self, group: str) -> GroupState:
        """The live group ``group`` names. Raises UnknownGroup."""
        root = self.tree.lookup(group)
        if root is None:
            raise UnknownGroup(group)
        return root

    def resolve(self, group: str, tokens: float) -> GroupState:
        """The live group a request names. Raises UnknownGroup, or InvalidRequest for a
        token count no path of it can ever hold."""
        root = self.lookup(group)
        if tokens > root.max_tokens:
            raise too_large(group, tokens, root)
        return root

    def admit(
        self,
        group: str,
        root: GroupState,
        tokens: float,
        now: float,
        horizon: float,
        exclude: Collection[str] = frozenset(),
    ) -> Lease | None:
        """Select a path from ``root`` that avoids the deployments in ``exclude``, commit it
        and hand out its Lease; None when no path admits the request now."""
        path = select(root, tokens, now, horizon, self.rng, exclude)
        if path is None:
            return None
        commit(path, tokens, now, horizon, self.wake)
        self.version += 1
        return Lease(self, group, path, tokens)

    def take_back(self, lease: Lease, now: float, horizon: float) -> None:
        """Undo an open lease nobody will use: its request, tokens and slot go back."""
        take_back(forward(lease.gates), lease.tokens, now, horizon, self.wake)
        lease.open = False
        self.version += 1

    def refusal(self, group: str, root: GroupState, tokens: float, now: float) -> NoCapacity:
        """NoCapacity for a request nothing admits now, with the exact ``retry_after`` on
        the caller's clock (see ``ratetree.clocks``)."""
        key = (group, tokens)
        cached = self.refusals.get(key)
        if cached is not None and cached[0] == self.version:
            ready = cached[1]
        else:
            ready = earliest(root, tokens)
            self.refusals[key] = (self.version, ready)
        if ready == NEVER:
            return NoCapacity(group, None)
        return NoCapacity(group, max(0.0, ready - now) + self.reading.lag)

    def finish(
        self,
        lease: Lease,
        tokens: object,
        retry_after: object,
        failed: bool,
        latency: float | None = None,
    ) -> None:
        """Settle an open lease (the :class:`~ratetree.core.leases.Settler` of every lease
        this view grants): free its slot, settle its tokens, record a failure, tell a
        shared backend and serve the waiters the release may admit. Takes the lock, reads
        the clock first (a clock that raises changes nothing) and marks the lease released
        last. Does nothing for a lease already settled. Raises InvalidRequest (ValueError)
        for a bad ``tokens`` or ``retry_after``."""
        actual: float | None
        if tokens is None:
            actual = None
        elif type(tokens) is int and 0 <= tokens < FAST_TOKENS:
            actual = tokens
        else:
            actual = number(tokens, "tokens")
        wait = None if retry_after is None else number(retry_after, "retry_after")
        lock = self.lock
        if not lock.acquire(False):
            take_contended(lock, self.pause)
        try:
            now = self.begin()
            horizon = self.horizon
            if not lease.open:
                return
            gates = lease.gates
            if gates[0].retired:  # granted before a reconfiguration: settle what was kept
                gates = forward(gates)
            # A deployment that a reconfiguration removed records no failure.
            failing = failed and gates and isinstance(gates[-1], DeploymentState)
            if failing:
                self._record_failure(gates[-1], now, wait)  # type: ignore[arg-type]
            settle(gates, lease.tokens, actual, now, horizon, self.wake)
            if latency is not None:
                observe_latency(gates, latency)
            if failing:
                self.wake.refresh(gates[-1], horizon)
            lease.open = False
            self.version += 1
            backend = self.backend
            trip = None
            if backend.shared:
                trip = backend.settle(lease, actual, wait, failed, now)
            waiting = self.waiting
            if waiting.entries:  # a release can admit a waiter
                waiting.released(lease, now, horizon)
        finally:
            lock.release()
        if trip is not None:  # deliver to the shared state with the lock free
            trip.run()
            with self.locked() as moment:
                self.fold(trip, moment, nothing)

    def renew(self, lease: Lease, ttl: object) -> None:
        """Extend ``lease``'s slots in a shared state (the Settler's ``renew``). Raises
        InvalidRequest (ValueError) for a bad ``ttl``; never for an unreachable state."""
        seconds = None if ttl is None else number(ttl, "ttl", positive=True)
        backend = self.backend
        if not backend.shared:
            return  # nothing expires in memory
        with self.locked() as moment:
            trip = backend.renew(lease, seconds, moment.now) if lease.open else None
        if trip is not None:  # an awaited backend queues it instead (None)
            trip.run()
            with self.locked() as moment:
                self.fold(trip, moment, nothing)

    def fold(self, trip: Trip | AsyncTrip, moment: Moment, undo: Callable[[], None]) -> bool:
        """Apply a backend's trip (its reply changes the view) and bump the version."""
        try:
            return trip.apply(moment, undo)
        finally:
            self.version += 1

    def reconfigure(self, tree: Tree, now: float, horizon: float) -> None:
        """Carry the state into ``tree`` (built and validated) and make it the live one."""
        self.wake.drain(horizon)
        self.wake = Wakeups()
        transfer(self.tree, tree, now, horizon, self.wake)
        self.tree = tree
        self.refusals.clear()
        self.version += 1

    def _record_failure(
        self, deployment: DeploymentState, now: float, retry_after: float | None
    ) -> None:
        if retry_after is not None:
            until = now + retry_after
        else:
            fails = deployment.failures
            fails.append(now)
            while fails and fails[0] <= now - FAILURE_WINDOW:
                fails.popleft()
            if len(fails) <= self.allowed_fails:
                return
            until = now + self.cooldown_time
        if until > deployment.cooling_until:
            deployment.cooling_until = until


class MemoryState:
    """The default backend: limits live in this process only, so the view's commit is
    final and nothing is ever sent anywhere."""

    __slots__ = ()
    shared = False
    retries = 0

    def bind(self, tree: Tree, host: Host) -> None:
        pass

    def map(self, tree: Tree) -> None:
        pass

    def commit(self, lease: Lease, now: float) -> Trip | None:
        return None

    def refresh(self, root: GroupState, now: float) -> Trip | None:
        return None

    def settle(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        now: float,
    ) -> Trip | None:
        return None

    def renew(self, lease: Lease, ttl: float | None, now: float) -> Trip | None:
        return None

    def __repr__(self) -> str:
        return "<MemoryState>"


def _is_a_backend(state: MemoryState) -> StateBackend:  # mypy checks the protocol here
    return state


def _is_a_settler(local: LocalState) -> Settler:  # mypy checks the protocol here
    return local
