"""The public entry point: a tree of groups and deployments with one lock around it.

Every operation takes the lock, reads the clock once (``LocalState.begin``), looks the
group up in the live tree under that same lock and changes the tree only through the
primitives of ``ratetree.state.memory``. A shared backend's round trips run between two
holds of the lock, never inside one (see ``ratetree.state.base``); ``ratetree.admission``
holds the halves of the admission loop that ``acquire`` and ``aacquire`` share.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Collection
from functools import partial
from typing import cast

from ratetree.admission import acquire_awaited, land, start
from ratetree.clocks import Clock as Clock  # re-exported for older imports
from ratetree.config.litellm import load_litellm
from ratetree.core.build import Tree
from ratetree.core.explain import Explanation, Snapshot, explain_group, take_snapshot
from ratetree.core.gates import GroupState
from ratetree.core.leases import Lease
from ratetree.core.specs import TreeSpec
from ratetree.core.validate import FAST_TOKENS, count, number, show
from ratetree.errors import ConfigError, NoCapacity, SpecTypeError
from ratetree.state.base import AsyncStateBackend, StateBackend, Trip, awaited, check_backend
from ratetree.state.memory import LocalState, MemoryState, group_name, take_contended
from ratetree.waiting.queue import WaitQueue, wait_async, wait_blocking

# Both release the GIL and let another thread run; Windows has no sched_yield.
_yield_thread: Callable[[], None] = getattr(os, "sched_yield", None) or partial(time.sleep, 0)


class Scheduler:
    """Chooses deployments for requests to groups, honoring every limit on the way.

    ``clock`` is a zero-argument callable returning seconds (``time.monotonic`` by
    default; :class:`ratetree.testing.FakeClock` in tests), read once per operation under
    the rule of ``ratetree.clocks``: time never goes backwards inside a scheduler.
    ``rng`` is the :class:`random.Random` the shuffle strategies draw from. ``state``
    is a :class:`ratetree.state.base.StateBackend` that shares the limits with other
    replicas (:class:`ratetree.RedisState`), or an ``AsyncStateBackend``
    (:class:`ratetree.AsyncRedisState`, admitting through :meth:`aacquire`); without it
    everything stays in this process. All methods are thread-safe. Raises ConfigError
    for an invalid ``spec``, SpecTypeError for a ``clock``, ``rng`` or ``state`` of the
    wrong kind.
    """

    def __init__(
        self,
        spec: TreeSpec,
        *,
        allowed_fails: object = 3,
        cooldown_time: object = 5.0,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        state: StateBackend | AsyncStateBackend | None = None,
    ) -> None:
        fails = count(allowed_fails, "allowed_fails", error=ConfigError)
        cooldown = number(cooldown_time, "cooldown_time", error=ConfigError)
        if not callable(clock):
            raise SpecTypeError(f"clock must be a callable returning seconds, got {show(clock)}")
        if rng is not None and not callable(getattr(rng, "random", None)):
            raise SpecTypeError(f"rng must be a random.Random, got {show(rng)}")
        tree = Tree(spec)
        backend = check_backend(state) if state is not None else MemoryState()
        self._awaited: AsyncStateBackend | None = backend if awaited(backend) else None
        # acquire's backend; with an awaited one acquire refuses before it is used
        self._backend = cast(StateBackend, backend)
        self._shared = backend.shared
        rng = rng if rng is not None else random.Random()
        self._local = LocalState(tree, clock, rng, backend, fails, cooldown, _yield_thread)
        self._waiting = self._local.waiting = WaitQueue(self._local)
        with self._local.lock:
            self._backend.bind(tree, self._local)

    @classmethod
    def from_litellm(
        cls,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
        group_strategies: object = None,
        routing_strategy_args: object = None,
        allowed_fails: object = 3,
        cooldown_time: object = 5.0,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        state: StateBackend | AsyncStateBackend | None = None,
    ) -> Scheduler:
        """Build a scheduler from a LiteLLM ``model_list`` in which an entry whose
        ``litellm_params.model`` names another group is a reference to that group.
        Raises ConfigError naming the offending entry."""
        spec = load_litellm(
            model_list,
            model_group_alias=model_group_alias,
            routing_strategy=routing_strategy,
            group_limits=group_limits,
            group_strategies=group_strategies,
            routing_strategy_args=routing_strategy_args,
        )
        return cls(
            spec,
            allowed_fails=allowed_fails,
            cooldown_time=cooldown_time,
            clock=clock,
            rng=rng,
            state=state,
        )

    @property
    def allowed_fails(self) -> int:
        """Failures within a minute that a deployment survives before it cools down."""
        return self._local.allowed_fails

    @allowed_fails.setter
    def allowed_fails(self, value: object) -> None:
        self._local.allowed_fails = count(value, "allowed_fails", error=ConfigError)

    @property
    def cooldown_time(self) -> float:
        """Seconds a deployment cools down once ``allowed_fails`` is exceeded."""
        return self._local.cooldown_time

    @cooldown_time.setter
    def cooldown_time(self, value: object) -> None:
        self._local.cooldown_time = number(value, "cooldown_time", error=ConfigError)

    @property
    def state(self) -> StateBackend | AsyncStateBackend:
        """Where the limits are kept: the ``state`` given, else the in-memory default."""
        return self._backend

    @property
    def _tree(self) -> Tree:  # for tests that look at a strategy's tier
        return self._local.tree

    @property
    def spec(self) -> TreeSpec:
        return self._local.tree.spec

    @property
    def groups(self) -> tuple[str, ...]:
        """Names of the groups (aliases not included)."""
        return tuple(g.name for g in self._local.tree.spec.groups)

    # Arguments from callers are typed ``object`` (a group name, numbers) or an abstract
    # collection and checked in the body, so that the compiled build, which enforces
    # annotations, raises the same errors as the pure one (tests/core/test_bad_input.py).
    def acquire(
        self, group: object, *, tokens: object = 0, exclude: Collection[str] = frozenset()
    ) -> Lease:
        """Reserve one request and ``tokens`` tokens on a deployment reachable from
        ``group`` and on every limited node and reference on the way, never on a deployment
        whose id is in ``exclude`` (the ``retry_after`` of a refusal does not look at it).

        Raises NoCapacity (with ``retry_after``) when nothing can admit it now (with
        ``retry_after=None`` while waiters on a group sharing a deployment are queued),
        UnknownGroup for a name that is no group, and ValueError for a negative token count
        or one larger than every path could ever hold; ConfigError on a scheduler whose
        ``state`` is awaited (:class:`ratetree.AsyncRedisState`): use :meth:`aacquire`.
        """
        amount: float
        if type(tokens) is int and 0 <= tokens < FAST_TOKENS:
            amount = float(tokens)
        else:
            amount = number(tokens, "tokens")  # the full check, off the hot path
        name = group if type(group) is str else group_name(group)
        local = self._local
        lock = local.lock
        trip: Trip | None
        refused = 0
        synced = False
        # The one admission loop: the in-memory backend leaves it on the first pass; a
        # shared one comes back with its round trip's reply (see ratetree.state.base).
        while True:
            if not lock.acquire(False):
                take_contended(lock, local.pause)
            try:
                now = local.begin()
                horizon = local.horizon
                root, lease = start(
                    local, self._waiting, name, amount, exclude, now, horizon, tokens
                )
                if lease is not None:
                    if not self._shared:  # the view is the whole state: the commit is final
                        return lease
                    if self._awaited is not None:  # off the in-memory path: checked here
                        local.take_back(lease, now, horizon)
                        raise self._needs_await("acquire")
                    trip = self._backend.commit(lease, now)
                    if trip is None:
                        return lease
                else:
                    if self._awaited is not None:
                        raise self._needs_await("acquire")
                    trip = None if synced else self._backend.refresh(root, now)
                    if trip is None:
                        raise local.refusal(name, root, amount, now)
                    synced = True  # one read per request
            finally:
                lock.release()
            trip.run()  # the round trip, with the lock free
            last = refused >= self._backend.retries
            stands = land(local, trip, lease, name, root, amount, last)
            if stands is not None:
                return stands
            if lease is not None:
                refused += 1

    async def aacquire(
        self, group: object, *, tokens: object = 0, exclude: Collection[str] = frozenset()
    ) -> Lease:
        """:meth:`acquire` for asyncio: with an awaited ``state``
        (:class:`ratetree.AsyncRedisState`) the round trip is awaited and the event loop
        never blocks (concurrent calls share round trips); with any other ``state`` it is
        :meth:`acquire`. Releasing the lease never blocks either: the backend delivers it
        from its own task (see :meth:`aclose`). Raises as :meth:`acquire` does."""
        backend = self._awaited
        if backend is None:
            return self.acquire(group, tokens=tokens, exclude=exclude)
        amount = number(tokens, "tokens")
        name = group_name(group)
        return await acquire_awaited(self._local, self._waiting, backend, name, amount, exclude)

    async def aclose(self) -> None:
        """Deliver every release an awaited ``state`` still queues and close its
        connections (call it before the event loop ends); nothing to do for other states.
        Never raises for an unreachable Redis: what could not be delivered stays counted
        in its ``pending``."""
        if self._awaited is not None:
            await self._awaited.aclose()

    def _needs_await(self, method: str) -> ConfigError:
        return ConfigError(
            f"{method} is not available with state={self._backend!r}, whose round trips "
            "are awaited: call `await scheduler.aacquire(...)` on its event loop"
        )

    def try_acquire(self, group: object, *, tokens: object = 0) -> Lease | None:
        """Like :meth:`acquire`, but returns None instead of raising NoCapacity."""
        try:
            return self.acquire(group, tokens=tokens)
        except NoCapacity:
            return None

    async def acquire_async(
        self,
        group: object,
        *,
        tokens: object = 0,
        timeout: object = None,
        priority: object = 0,
        fail_fast: bool = False,
    ) -> Lease:
        """Like :meth:`acquire`, but waits in the scheduler's queue until the request can
        be admitted (see docs/waiting.md): lower ``priority`` first,
        first come first served within one. A cancelled wait takes nothing.

        Raises NoCapacity (with ``retry_after``) when ``timeout`` seconds pass first, or
        at once with ``fail_fast`` when the earliest moment capacity could appear lies past
        the horizon; UnknownGroup and ValueError as :meth:`acquire` does, ValueError for
        a ``timeout`` or ``priority`` that is not a finite number (timeout >= 0), and
        ConfigError on a scheduler with a shared ``state`` (waiting is local only).
        """
        self._check_can_wait("acquire_async")
        return await wait_async(
            self._waiting, group_name(group), tokens, timeout, priority, fail_fast
        )

    def acquire_wait(
        self,
        group: object,
        *,
        tokens: object = 0,
        timeout: object = None,
        priority: object = 0,
        fail_fast: bool = False,
    ) -> Lease:
        """:meth:`acquire_async` for threads: blocks the calling thread. Raises as it."""
        self._check_can_wait("acquire_wait")
        return wait_blocking(self._waiting, group_name(group), tokens, timeout, priority, fail_fast)

    def _check_can_wait(self, method: str) -> None:
        if self._awaited is not None:
            raise self._needs_await(method)
        if self._backend.shared:
            # Waiters wake on releases and refills they can see; another replica's
            # release reaches this one only at its next round trip, so a wait here could
            # sleep through capacity or take it past the queue. Not offered, rather than
            # offered wrong.
            raise ConfigError(
                f"{method} is not available with state={self._backend!r}: a shared state "
                "does not tell this replica when another one frees capacity; call "
                "acquire and retry after NoCapacity.retry_after"
            )

    @property
    def waiting(self) -> int:
        """How many requests are queued in acquire_async or acquire_wait (read under the
        lock, so never mid-pass)."""
        with self._local.lock:
            return len(self._waiting)

    def reconfigure(self, spec: TreeSpec) -> None:
        """Switch to ``spec`` atomically, keeping the state of every deployment, group and
        reference that keeps its id (see ``ratetree.core.reconfigure``); queued waiters
        are looked at again. Raises ConfigError, changing nothing, for an invalid
        ``spec``."""
        tree = Tree(spec)  # validates before anything changes
        local = self._local
        with local.locked() as moment:
            local.reconfigure(tree, moment.now, moment.horizon)
            self._backend.map(tree)
            self._waiting.regroup(moment.now, moment.horizon)

    def reconfigure_litellm(
        self,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
        group_strategies: object = None,
        routing_strategy_args: object = None,
    ) -> None:
        """:meth:`reconfigure` from a LiteLLM ``model_list`` read as :meth:`from_litellm`
        reads it. Raises ConfigError naming the offending entry, changing nothing."""
        self.reconfigure(
            load_litellm(
                model_list,
                model_group_alias=model_group_alias,
                routing_strategy=routing_strategy,
                group_limits=group_limits,
                group_strategies=group_strategies,
                routing_strategy_args=routing_strategy_args,
            )
        )

    def explain(self, group: object, tokens: object = 0) -> Explanation:
        """What :meth:`acquire` would do now, and why each node would be passed over,
        naming the queued waiter that holds the capacity if one does. Consumes nothing
        (waiters whose moment has come are served first, as acquire would). Raises
        UnknownGroup for an unknown name and ValueError for a token count that is not a
        finite number >= 0; a count no path can ever hold is shown as such rather than
        raised."""
        amount = number(tokens, "tokens")
        name = group_name(group)
        local = self._local
        with local.locked() as moment:
            root: GroupState = local.lookup(name)
            now, horizon = moment.now, moment.horizon
            queued = self._waiting.ahead(root, now, horizon)  # first: it may serve waiters
            return explain_group(root, name, amount, now, horizon, queued)

    def snapshot(self) -> Snapshot:
        """A frozen picture of every node's and reference's remaining capacity, leases in
        flight and cooldown."""
        local = self._local
        with local.locked() as moment:
            return take_snapshot(local.tree, moment.now)

    def __repr__(self) -> str:
        t = self._local.tree
        return f"<Scheduler {len(t.spec.groups)} groups, {len(t.deployments)} deployments>"
