"""The public entry point: a tree of groups and deployments with one lock around it."""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import cachetools

from ratetree.config.litellm import load_litellm
from ratetree.core.buckets import NEVER, tolerance
from ratetree.core.build import Tree
from ratetree.core.explain import Explanation, Snapshot, explain_group, take_snapshot
from ratetree.core.gates import DeploymentState, GroupState, Wakeups
from ratetree.core.leases import Lease
from ratetree.core.reconfigure import forward, transfer
from ratetree.core.selection import commit, earliest, select, settle
from ratetree.core.specs import TreeSpec
from ratetree.core.strategies.latency_based import observe_latency
from ratetree.core.validate import count, number
from ratetree.errors import ConfigError, InvalidRequest, NoCapacity, UnknownGroup
from ratetree.waiting.queue import WaitQueue, wait_async, wait_blocking

if TYPE_CHECKING:
    from ratetree.state.redis import RedisState

Clock = Callable[[], float]

FAILURE_WINDOW = 60.0  # seconds over which LiteLLM counts allowed_fails


# Whole token counts below this skip the full check; it is far beyond any real request.
FAST_TOKENS = 2**53


def _too_large(group: str, tokens: float, root: GroupState) -> InvalidRequest:
    return InvalidRequest(
        f"tokens={tokens!r} exceeds every path of group {group!r}: "
        f"the largest request it can ever admit is {root.max_tokens:g} tokens"
    )


# Attempts to take a busy lock by yielding before blocking on it; see _take_contended.
SPINS = 64
# Both release the GIL and let another thread run; Windows has no sched_yield.
_yield_thread: Callable[[], None] = getattr(os, "sched_yield", None) or partial(time.sleep, 0)


def _take_contended(lock: threading.Lock) -> None:
    """Take ``lock``, which another thread holds, without forming a convoy.

    Blocking at once would hand the lock, at its release, to a thread that does not hold
    the GIL: the holder runs on, asks for the lock again and blocks, and from then on
    every request pays two thread switches (measured: two threads got 55% of one thread's
    rate). Yielding the GIL and retrying means the lock is only ever taken by a running
    thread. The critical sections are short and never block in the in-memory scheduler;
    after SPINS tries (a Redis round trip can hold the lock longer) this blocks.
    """
    for _ in range(SPINS):
        _yield_thread()  # releases the GIL, so the holder can finish and release
        if lock.acquire(False):
            return
    lock.acquire()


class Scheduler:
    """Chooses deployments for requests to groups, honoring every limit on the way.

    ``clock`` is a zero-argument callable returning seconds (``time.monotonic`` by
    default; :class:`ratetree.testing.FakeClock` in tests) and is read once per operation.
    ``rng`` is the :class:`random.Random` the shuffle strategies draw from. ``state``
    shares the limits with other replicas through Redis (:class:`ratetree.RedisState`);
    without it everything stays in this process. All methods are thread-safe. Raises
    ConfigError for an invalid ``spec``.
    """

    def __init__(
        self,
        spec: TreeSpec,
        *,
        allowed_fails: int = 3,
        cooldown_time: float = 5.0,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        state: RedisState | None = None,
    ) -> None:
        self.allowed_fails = count(allowed_fails, "allowed_fails", error=ConfigError)
        self.cooldown_time = number(cooldown_time, "cooldown_time", error=ConfigError)
        self._tree = Tree(spec)
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._lock = threading.Lock()
        self._wake = Wakeups()
        # Refusals repeat while nothing changes; remember the answer per (group, tokens)
        # until the next commit, release or failure bumps the version.
        self._version = 0
        self._refusals: cachetools.LRUCache[tuple[str, float], tuple[int, float]] = (
            cachetools.LRUCache(maxsize=1024)
        )
        self._waiting = WaitQueue(self)
        self._state = state
        if state is not None:
            state._bind(self)

    @classmethod
    def from_litellm(
        cls,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
        allowed_fails: int = 3,
        cooldown_time: float = 5.0,
        clock: Clock = time.monotonic,
        rng: random.Random | None = None,
        state: RedisState | None = None,
    ) -> Scheduler:
        """Build a scheduler from a LiteLLM ``model_list`` in which an entry whose
        ``litellm_params.model`` names another group is a reference to that group.
        Raises ConfigError naming the offending entry."""
        spec = load_litellm(
            model_list,
            model_group_alias=model_group_alias,
            routing_strategy=routing_strategy,
            group_limits=group_limits,
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
    def spec(self) -> TreeSpec:
        return self._tree.spec

    @property
    def groups(self) -> tuple[str, ...]:
        """Names of the groups (aliases not included)."""
        return tuple(g.name for g in self._tree.spec.groups)

    def _group(self, name: str) -> GroupState:
        found = self._tree.lookup(name)
        if found is None:
            raise UnknownGroup(name)
        return found

    def acquire(self, group: str, *, tokens: float = 0) -> Lease:
        """Reserve one request and ``tokens`` tokens on a deployment reachable from
        ``group`` and on every limited node and reference on the way.

        Raises NoCapacity (with ``retry_after``) when nothing can admit it now (with
        ``retry_after=None`` while waiters on a group sharing a deployment are queued),
        UnknownGroup for a name that is no group, and ValueError for a negative token count
        or one larger than every path could ever hold.
        """
        if tokens.__class__ is not int or not 0 <= tokens < FAST_TOKENS:
            tokens = number(tokens, "tokens")  # the full check, off the hot path
        root = self._tree.groups.get(group) or self._group(group)
        if tokens > root.max_tokens:
            raise _too_large(group, tokens, root)
        if self._state is not None:
            return self._state._acquire(group, root, tokens)
        lock = self._lock
        if not lock.acquire(False):
            _take_contended(lock)
        try:
            now = self._clock()
            horizon = now + tolerance(now)
            heap = self._wake.heap
            if heap and heap[0][0] <= horizon:  # a wake-up is due
                self._wake.drain(horizon)
            # Capacity that queued waiters need is theirs: no jumping the queue.
            if self._waiting.entries and self._waiting.holds(root, now, horizon):
                raise NoCapacity(group, None)
            path = select(root, tokens, now, horizon, self._rng)
            if path is not None:
                commit(path, tokens, now, horizon, self._wake)
                self._version += 1
                return Lease(self, group, path, tokens)
            key = (group, tokens)
            cached = self._refusals.get(key)
            if cached is not None and cached[0] == self._version:
                ready = cached[1]
            else:
                ready = earliest(root, tokens)
                self._refusals[key] = (self._version, ready)
        finally:
            lock.release()
        raise NoCapacity(group, None if ready == NEVER else max(0.0, ready - now))

    def try_acquire(self, group: str, *, tokens: float = 0) -> Lease | None:
        """Like :meth:`acquire`, but returns None instead of raising NoCapacity."""
        try:
            return self.acquire(group, tokens=tokens)
        except NoCapacity:
            return None

    def _finish(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        latency: float | None = None,
    ) -> None:
        if tokens is not None and (tokens.__class__ is not int or not 0 <= tokens < FAST_TOKENS):
            tokens = number(tokens, "tokens")
        if retry_after is not None:
            number(retry_after, "retry_after")
        lock = self._lock
        if not lock.acquire(False):
            _take_contended(lock)
        try:
            if not lease._open:
                return
            lease._open = False
            now = self._clock()
            horizon = now + tolerance(now)
            heap = self._wake.heap
            if heap and heap[0][0] <= horizon:  # a wake-up is due
                self._wake.drain(horizon)
            items = lease._items
            if items[0].retired:  # granted before a reconfiguration: settle what was kept
                items = forward(items)
            # A deployment that a reconfiguration removed records no failure.
            if failed and items and isinstance(items[-1], DeploymentState):
                self._record_failure(items[-1], now, retry_after)
            settle(items, lease.tokens, tokens, now, horizon, self._wake)
            if latency is not None:
                observe_latency(items, latency)
            if failed and items and isinstance(items[-1], DeploymentState):
                self._wake.refresh(items[-1], horizon)
            if self._state is not None:
                self._state._finished(lease, tokens, retry_after, failed, now)
            self._version += 1
            if self._waiting.entries:  # a release can admit a waiter
                self._waiting.serve(now, horizon)
        finally:
            lock.release()

    def _prepare(self, group: str, tokens: object) -> tuple[GroupState, float]:
        """The group's state and the checked token count; raises as ``acquire`` does."""
        amount = number(tokens, "tokens")
        root = self._group(group)
        if amount > root.max_tokens:
            raise _too_large(group, amount, root)
        return root, amount

    async def acquire_async(
        self,
        group: str,
        *,
        tokens: float = 0,
        timeout: float | None = None,
        priority: float = 0,
        fail_fast: bool = False,
    ) -> Lease:
        """Like :meth:`acquire`, but waits in the scheduler's queue until the request can
        be admitted (see "Waiting for capacity" in the README): lower ``priority`` first,
        first come first served within one. A cancelled wait takes nothing.

        Raises NoCapacity (with ``retry_after``) when ``timeout`` seconds pass first, or
        at once with ``fail_fast`` when the earliest moment capacity could appear lies past
        the horizon; UnknownGroup and ValueError as :meth:`acquire` does, ValueError for
        a ``timeout`` or ``priority`` that is not a finite number (timeout >= 0), and
        ConfigError on a scheduler with a shared ``state`` (waiting is local only).
        """
        self._check_can_wait("acquire_async")
        return await wait_async(self, group, tokens, timeout, priority, fail_fast)

    def acquire_wait(
        self,
        group: str,
        *,
        tokens: float = 0,
        timeout: float | None = None,
        priority: float = 0,
        fail_fast: bool = False,
    ) -> Lease:
        """:meth:`acquire_async` for threads: blocks the calling thread. Raises as it."""
        self._check_can_wait("acquire_wait")
        return wait_blocking(self, group, tokens, timeout, priority, fail_fast)

    def _check_can_wait(self, method: str) -> None:
        if self._state is not None:
            # Waiters wake on releases and refills they can see; another replica's
            # release reaches this one only at its next round trip, so a wait here could
            # sleep through capacity or take it past the queue. Not offered, rather than
            # offered wrong.
            raise ConfigError(
                f"{method} is not available with state={self._state!r}: a shared state "
                "does not tell this replica when another one frees capacity; call "
                "acquire and retry after NoCapacity.retry_after"
            )

    @property
    def waiting(self) -> int:
        """How many requests are queued in acquire_async or acquire_wait."""
        return len(self._waiting)

    def reconfigure(self, spec: TreeSpec) -> None:
        """Switch to ``spec`` atomically, keeping the state of every deployment, group and
        reference that keeps its id (see ``_reconfigure``); queued waiters are looked at
        again. Raises ConfigError, changing nothing, for an invalid ``spec``."""
        tree = Tree(spec)  # validates before anything changes
        with self._lock:
            now = self._clock()
            horizon = now + tolerance(now)
            self._wake.drain(horizon)
            self._wake = Wakeups()
            transfer(self._tree, tree, now, horizon, self._wake)
            self._tree = tree
            if self._state is not None:
                self._state._map(tree)
            self._refusals.clear()
            self._version += 1
            self._waiting.regroup(now, horizon)

    def reconfigure_litellm(
        self,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
    ) -> None:
        """:meth:`reconfigure` from a LiteLLM ``model_list`` read as :meth:`from_litellm`
        reads it. Raises ConfigError naming the offending entry, changing nothing."""
        self.reconfigure(
            load_litellm(
                model_list,
                model_group_alias=model_group_alias,
                routing_strategy=routing_strategy,
                group_limits=group_limits,
            )
        )

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

    def explain(self, group: str, tokens: float = 0) -> Explanation:
        """What :meth:`acquire` would do now, and why each node would be passed over.
        Consumes nothing. Raises UnknownGroup for an unknown name and ValueError for a
        token count that is not a finite number >= 0; a count no path can ever hold is
        shown as such rather than raised."""
        tokens = number(tokens, "tokens")
        root = self._group(group)
        with self._lock:
            now = self._clock()
            horizon = now + tolerance(now)
            self._wake.drain(horizon)
            return explain_group(root, group, tokens, now, horizon)

    def snapshot(self) -> Snapshot:
        """A frozen picture of every node's and reference's remaining capacity, leases in
        flight and cooldown."""
        with self._lock:
            now = self._clock()
            self._wake.drain(now + tolerance(now))
            return take_snapshot(self._tree, now)

    def __repr__(self) -> str:
        t = self._tree
        return f"<Scheduler {len(t.spec.groups)} groups, {len(t.deployments)} deployments>"
