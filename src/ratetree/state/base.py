"""The seam between a scheduler and where its limits live: the :class:`StateBackend`.

A scheduler keeps the whole tree in memory (its *view*, ``state.memory.LocalState``) and
runs one admission loop whatever the backend:

1. under its lock: read the clock, select a path and commit it to the view (the one
   admission primitive, ``LocalState.admit``: select, commit, version bump, Lease);
2. ask the backend for a :class:`Trip` to confirm the commit (``commit``). The default
   backend (:class:`~ratetree.state.memory.MemoryState`) answers None: the view *is* the
   state and the lease stands. A shared backend (:class:`~ratetree.state.redis.RedisState`)
   prepares its round trip here, still under the lock, without any I/O;
3. release the lock and ``run`` the trip: the network round trip, with the lock free;
4. take the lock again and ``apply`` the reply: a commit the shared state refused is taken
   back in the view (``undo``, the inverse of commit), then the authoritative state is
   copied in; a refusal selects again, at most ``retries`` times.

A refused selection asks ``refresh`` for a trip that reads the shared state once before
the scheduler answers NoCapacity; releases and failures go the same way (``settle``): the
view is settled under the lock, the backend's trip delivers it after. So no backend ever
does I/O while the scheduler's lock is held, and a backend reads nothing of the
scheduler but what these calls pass it (the tree, the clock reading, the :class:`Host`).

**Asyncio.** :class:`AsyncStateBackend` is the same protocol with an awaitable
``AsyncTrip.run``: ``Scheduler.aacquire`` runs steps 1, 2 and 4 under the thread lock
without awaiting (a thread lock is never held across an ``await``) and awaits step 3, so
the event loop is never blocked. Its ``settle`` returns nothing: a release is called from
synchronous code (``Lease.release``), so the backend queues the delivery and sends it from
its own task, batched with its next round trip (``state.redis_async.AsyncRedisState``).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol, TypeGuard, cast

from ratetree.core.build import Tree
from ratetree.core.gates import GroupState, Wakeups
from ratetree.core.leases import Lease
from ratetree.core.validate import show
from ratetree.errors import SpecTypeError


class Moment(NamedTuple):
    """One reading of the scheduler's clock, taken under its lock: ``now``, the moment up
    to which things count as due (``horizon``), and the wake-ups to refresh gates with."""

    now: float
    horizon: float
    wake: Wakeups


class Host(Protocol):
    """What a backend may use of the scheduler it serves."""

    @property
    def allowed_fails(self) -> int: ...

    @property
    def cooldown_time(self) -> float: ...

    def locked(self) -> AbstractContextManager[Moment]:
        """The scheduler's lock held, the clock read and due wake-ups drained."""
        ...


class Trip(Protocol):
    """One round trip to a shared state, prepared under the scheduler's lock."""

    def run(self) -> None:
        """Do the I/O. Called with the scheduler's lock free; never raises for an
        unreachable state (it keeps what happened for ``apply``)."""
        ...

    def apply(self, moment: Moment, undo: Callable[[], None]) -> bool:
        """Under the lock again: copy the reply into the view. For a commit, True when the
        commit stands; otherwise ``undo`` (taking the tentative commit back) has been
        called first. For a read, True when something was learned. May raise
        StateUnavailable (after ``undo``) when failing closed."""
        ...


class AsyncTrip(Protocol):
    """:class:`Trip` for an asyncio backend: ``run`` is awaited, never blocking the loop."""

    async def run(self) -> None: ...

    def apply(self, moment: Moment, undo: Callable[[], None]) -> bool: ...


class _Backend(Protocol):
    """What every backend, synchronous or not, declares and is told."""

    #: whether other processes share this state. False: the view is the whole state, the
    #: scheduler never calls ``commit``, ``refresh`` or ``settle``, and it offers waiting
    shared: bool
    #: how often a commit the shared state refused selects again
    retries: int

    def bind(self, tree: Tree, host: Host) -> None:
        """Attach to the scheduler ``host`` whose tree is ``tree``. Raises ConfigError
        when this backend already serves another scheduler."""
        ...

    def map(self, tree: Tree) -> None:
        """A reconfiguration replaced the tree with ``tree``."""
        ...


class StateBackend(_Backend, Protocol):
    """Where a scheduler's limits are kept. Every method is called under the scheduler's
    lock and must not do I/O; the I/O goes into the :class:`Trip` they return."""

    def commit(self, lease: Lease, now: float) -> Trip | None:
        """``lease`` was committed to the view: the trip that confirms it, or None when
        the view's commit is final."""
        ...

    def refresh(self, root: GroupState, now: float) -> Trip | None:
        """The view refused a request to ``root``: a trip that reads the shared state
        before the refusal is final, or None."""
        ...

    def settle(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        now: float,
    ) -> Trip | None:
        """``lease`` was settled in the view: the trip that delivers it, or None."""
        ...

    def renew(self, lease: Lease, ttl: float | None, now: float) -> Trip | None:
        """The open ``lease`` is to live ``ttl`` more seconds (None: the backend's own TTL):
        the trip that extends it, or None when nothing expires. Its ``apply`` never
        raises for an unreachable state."""
        ...


class AsyncStateBackend(_Backend, Protocol):
    """:class:`StateBackend` whose trips are awaited (``Scheduler.aacquire``). Its methods
    are called under the scheduler's lock, on any thread, and never do I/O."""

    #: always True: marks a backend whose round trips must be awaited (see :func:`awaited`)
    awaited: bool

    def commit(self, lease: Lease, now: float) -> AsyncTrip | None: ...

    def refresh(self, root: GroupState, now: float) -> AsyncTrip | None: ...

    def settle(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        now: float,
    ) -> None:
        """``lease`` was settled in the view: queue its delivery, which the backend sends
        from its own task (never blocking the caller, which may be any thread)."""
        ...

    def renew(self, lease: Lease, ttl: float | None, now: float) -> None:
        """The open ``lease`` is to live ``ttl`` more seconds (None: the backend's own TTL):
        queue the extension, sent from the backend's own task as ``settle``'s deliveries
        are."""
        ...

    async def aclose(self) -> None:
        """Deliver everything queued and close the connections; the backend may be used
        again after (it reconnects)."""
        ...


def awaited(backend: StateBackend | AsyncStateBackend) -> TypeGuard[AsyncStateBackend]:
    """Whether ``backend``'s round trips are awaited (an :class:`AsyncStateBackend`)."""
    return getattr(backend, "awaited", False) is True


_METHODS = ("bind", "map", "commit", "refresh", "settle", "renew")


def check_backend(state: object) -> StateBackend | AsyncStateBackend:
    """``state`` if it has the protocol's methods and its ``shared`` flag. Raises
    SpecTypeError naming the value otherwise, at the constructor rather than at the first
    request."""
    if isinstance(getattr(state, "shared", None), bool) and all(
        callable(getattr(state, name, None)) for name in _METHODS
    ):
        return cast("StateBackend | AsyncStateBackend", state)
    raise SpecTypeError(
        f"state must be a state backend (ratetree.state.base.StateBackend), got {show(state)}"
    )
