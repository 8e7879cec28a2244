"""Shared limits across replicas: gate state kept in Redis, a whole path committed at once.

Each replica keeps its in-memory tree as a *view*: it selects a path locally as always,
then one script (``_redis_scripts.COMMIT``) checks every gate of the path against the
shared state and takes from all of them or from none. The script answers with the
authoritative state of those gates, which the replica copies into its view; a refusal
(another replica took the capacity) is answered the same way, and the replica selects
again, at most ``retries`` times. Redis is the authority: the view only saves the round
trips a refused commit would cost, it never admits on its own.

A view can also be too pessimistic: another replica's release or refund is seen only when
this replica next touches the gate. So when the view refuses outright, the replica reads
the whole subtree of the requested group once (at most every ``sync_interval`` seconds
per group) before it answers NoCapacity.

Only gates that hold shared state are sent: every deployment (its cooldown), and groups
and references that carry limits. In-flight counts are shared only where a
``max_parallel_requests`` caps them; elsewhere they count this replica's leases, which is
all least-busy needs to spread them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ratetree.core.buckets import NEVER, tolerance
from ratetree.core.gates import Gate, GroupState, below
from ratetree.core.leases import Lease
from ratetree.core.reconfigure import edge_keys
from ratetree.core.selection import commit, earliest, select
from ratetree.core.validate import show
from ratetree.errors import ConfigError, NoCapacity, StateUnavailable
from ratetree.state.scripts import COMMIT, READ, SETTLE

if TYPE_CHECKING:
    import redis

    from ratetree.core.build import Tree
    from ratetree.scheduler import Scheduler

log = logging.getLogger("ratetree.redis")

NO_ARGS = ("", "", "", "")
# Queued releases delivered before each operation; more wait for later ones (or flush),
# so one request after an outage does not pay for thousands of round trips.
BACKLOG = 64


class RedisStats:
    """Counters of one :class:`RedisState`, for metrics and tests."""

    __slots__ = (
        "dropped",
        "queued",
        "redelivered",
        "refused",
        "round_trips",
        "syncs",
        "unavailable",
    )

    def __init__(self) -> None:
        #: scripts that completed (commits, settles, reads, redeliveries)
        self.round_trips = 0
        #: commits Redis refused because other replicas had taken the capacity
        self.refused = 0
        #: subtree reads after the local view refused
        self.syncs = 0
        #: operations that found Redis unreachable
        self.unavailable = 0
        #: releases and failures that could not be delivered and were queued
        self.queued = 0
        #: queued releases delivered later
        self.redelivered = 0
        #: queued releases given up because the queue was full (reported in the log)
        self.dropped = 0

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)}" for k in self.__slots__)
        return f"RedisStats({fields})"


class _Remote:
    """One gate as the scripts see it: its keys and its descriptor arguments."""

    __slots__ = ("args", "buckets", "fails", "item", "keys")

    def __init__(self, item: Gate, base: str, name: str) -> None:
        self.item = item
        self.keys = (f"{base}h:{name}", f"{base}b:{name}")
        self.fails = f"{base}f:{name}"
        self.buckets = (*item.req, *item.tok)
        cap = 0 if item.max_parallel == NEVER else int(item.max_parallel)
        args = [str(cap), str(len(self.buckets))]
        seen: set[str] = set()
        for kind, bucket in [("r", b) for b in item.req] + [("t", b) for b in item.tok]:
            # Named by kind and period, so a changed capacity keeps the bucket's state.
            field = f"{kind}{bucket.period!r}"
            while field in seen:
                field += "'"
            seen.add(field)
            args += [field, kind, repr(bucket.interval), repr(bucket.period)]
            args.append(repr(float(bucket.capacity)))
        self.args = args


class _Pending:
    """A release or failure that Redis did not receive yet."""

    __slots__ = ("at", "diff", "gates", "late", "lease_id", "mode", "retry_after")

    def __init__(
        self,
        gates: list[_Remote],
        lease_id: str,
        diff: float,
        mode: str,
        retry_after: float,
        at: float,
    ) -> None:
        self.gates = gates
        self.lease_id = lease_id
        self.diff = diff
        self.mode = mode  # '' release, 'r' fail with retry_after, 'p' fail under the policy
        self.retry_after = retry_after
        self.at = at
        self.late = False  # its first delivery failed


class _Down(Exception):
    """Redis could not be reached; carries the client's exception. ``unsure``: the
    operation's own script may have run (the connection broke or timed out after it was
    sent), as opposed to a failure to connect during an outage already noticed."""

    def __init__(self, exc: Exception, unsure: bool) -> None:
        super().__init__(exc)
        self.unsure = unsure


class RedisState:
    """Keeps every gate's buckets, capped in-flight counts and cooldowns in Redis, so that
    schedulers in several processes share one set of limits.

    ``client`` is a ``redis.Redis`` (or a compatible client, e.g. for Valkey) or a URL
    such as ``"redis://localhost:6379/0"``; a URL gets ``timeout`` seconds for connecting
    and for each reply. Keys are named ``ratetree:{prefix}:...`` (the braces keep one
    scheduler's keys in one Redis Cluster slot); use one prefix per configuration.

    ``lease_ttl``: an in-flight slot expires this many seconds after its acquire, so leases
    of a replica that died free their slots; a call that outlives it frees its slot early.
    ``on_unavailable``: ``"closed"`` refuses with :class:`StateUnavailable` (a NoCapacity,
    ``retry_after=unavailable_retry_after``) while Redis is unreachable; ``"open"`` admits
    from this replica's own view and logs a warning once per outage. ``clock``: None uses
    the Redis server's TIME (the default, and what production wants); a callable sends its
    readings as the time instead (tests with a FakeClock). ``retries``: how often a refused
    commit selects again. ``max_pending``: releases kept for redelivery while Redis is
    down; beyond it the oldest is dropped and logged. Pass it as ``Scheduler(spec,
    state=...)``; one RedisState serves one scheduler. Raises ConfigError for a bad value,
    ImportError without the ``redis`` package.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "default",
        lease_ttl: float = 600.0,
        on_unavailable: str = "closed",
        clock: Callable[[], float] | None = None,
        retries: int = 3,
        sync_interval: float = 0.1,
        unavailable_retry_after: float = 1.0,
        max_pending: int = 10_000,
        replica_id: str | None = None,
        timeout: float = 1.0,
    ) -> None:
        import redis  # the optional dependency, imported only when a RedisState is made

        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigError(f"prefix {show(prefix)} must be a non-empty string without braces")
        if on_unavailable not in ("closed", "open"):
            raise ConfigError(f"on_unavailable {show(on_unavailable)} must be 'closed' or 'open'")
        for name, value in (
            ("lease_ttl", lease_ttl),
            ("sync_interval", sync_interval),
            ("unavailable_retry_after", unavailable_retry_after),
            ("timeout", timeout),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{name} {show(value)} must be a number")
            if not (math.isfinite(value) and value >= 0) or (name == "lease_ttl" and not value):
                raise ConfigError(f"{name} {show(value)} must be a finite number > 0")
        for name, count in (("retries", retries), ("max_pending", max_pending)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigError(f"{name} {show(count)} must be an integer >= 0")
        if isinstance(client, str):
            client = redis.Redis.from_url(
                client, socket_timeout=timeout, socket_connect_timeout=timeout
            )
        self.client: redis.Redis = client
        self.prefix = prefix
        self.lease_ttl = float(lease_ttl)
        self.on_unavailable = on_unavailable
        self.clock = clock
        self.retries = retries
        self.sync_interval = float(sync_interval)
        self.unavailable_retry_after = float(unavailable_retry_after)
        self.max_pending = max_pending
        self.replica_id = replica_id or uuid.uuid4().hex[:12]
        self.stats = RedisStats()
        self._errors = (redis.exceptions.RedisError,)
        self._timeout = redis.exceptions.TimeoutError
        self._commit = client.register_script(COMMIT)
        self._settle = client.register_script(SETTLE)
        self._read = client.register_script(READ)
        self._scheduler: Scheduler | None = None
        self._gates: dict[int, _Remote] = {}
        self._subtrees: dict[int, list[_Remote]] = {}
        self._synced: dict[int, float] = {}
        self._leases: dict[Lease, str] = {}
        self._pending: deque[_Pending] = deque()
        self._count = 0
        self._down = False

    # ----------------------------------------------------------------- wiring

    def _bind(self, scheduler: Scheduler) -> None:
        """Attach to ``scheduler`` (its constructor calls this). Raises ConfigError when
        this state already serves another scheduler."""
        if self._scheduler is not None:
            raise ConfigError(
                f"{self!r} already serves {self._scheduler!r}; make one per scheduler"
            )
        self._scheduler = scheduler
        self._map(scheduler._tree)

    def _map(self, tree: Tree) -> None:
        """Name the Redis keys of ``tree``'s gates; the scheduler calls this again after a
        reconfiguration. Earlier trees' entries stay: leases granted on them still settle
        on their keys, which name gates by id, so a kept gate keeps its Redis state."""
        self._subtrees.clear()
        self._synced.clear()
        base = f"ratetree:{{{self.prefix}}}:"
        for d in tree.deployments.values():
            self._gates[id(d)] = _Remote(d, base, f"d:{d.id}")
        for g in tree.groups.values():
            if g.limited:
                self._gates[id(g)] = _Remote(g, base, f"g:{g.name}")
        # A reference is named as reconfigure identifies it, so a kept one keeps its state.
        for key, edge in edge_keys(tree).items():
            if edge.limited:
                self._gates[id(edge)] = _Remote(edge, base, "r:" + json.dumps(key))

    @property
    def pending(self) -> int:
        """Releases and failures waiting to be delivered to Redis."""
        return len(self._pending)

    def flush(self) -> int:
        """Try to deliver the waiting releases now; returns how many still wait. Never
        raises for an unreachable Redis."""
        sched = self._bound()
        with sched._lock:
            now = sched._clock()
            with contextlib.suppress(_Down):  # still down: they keep waiting
                horizon = now + tolerance(now)
                self._round_trip(None, [], "", NO_ARGS, (), now, horizon, len(self._pending))
        return len(self._pending)

    def _bound(self) -> Scheduler:
        if self._scheduler is None:
            raise ConfigError(f"{self!r} is not attached to a scheduler yet")
        return self._scheduler

    # ----------------------------------------------------------------- the scheduler's hooks

    def _acquire(
        self, group: str, root: GroupState, tokens: float, exclude: frozenset[str] = frozenset()
    ) -> Lease:
        """:meth:`Scheduler.acquire` with the commit made in Redis. Raises NoCapacity, or
        StateUnavailable (a NoCapacity) when failing closed."""
        sched = self._bound()
        with sched._lock:
            now = sched._clock()
            horizon = now + tolerance(now)
            wake = sched._wake
            wake.drain(horizon)
            refused = 0
            synced = False
            while True:
                path = select(root, tokens, now, horizon, sched._rng, exclude)
                if path is None:
                    if synced or now - self._synced.get(id(root), -NEVER) < self.sync_interval:
                        break
                    synced = True
                    self._synced[id(root)] = now
                    gates = self._subtree(root)
                    try:
                        reply = self._round_trip(self._read, gates, "", NO_ARGS, (), now, horizon)
                    except _Down as down:
                        if self.on_unavailable == "closed":
                            raise self._unavailable(group, down) from down.__cause__
                        break
                    self.stats.syncs += 1
                    self._apply(gates, reply, now, horizon)
                    continue
                gates = self._on(path)
                self._count += 1
                lease_id = f"{self.replica_id}:{self._count}"
                args = (repr(float(tokens)), repr(self.lease_ttl), "", "")
                try:
                    reply = self._round_trip(self._commit, gates, lease_id, args, (), now, horizon)
                except _Down as down:
                    if down.unsure:  # the commit may have taken a slot: give it back
                        self._queue(_Pending(gates, lease_id, 0.0, "", 0.0, now))
                    if self.on_unavailable == "closed":
                        raise self._unavailable(group, down) from down.__cause__
                    commit(path, tokens, now, horizon, wake)  # fail open: this view alone
                    sched._version += 1
                    return Lease(sched, group, path, tokens)
                if reply[0] in (b"1", "1"):
                    commit(path, tokens, now, horizon, wake)
                    self._apply(gates, reply, now, horizon)
                    sched._version += 1
                    lease = Lease(sched, group, path, tokens)
                    self._leases[lease] = lease_id
                    return lease
                self.stats.refused += 1
                self._apply(gates, reply, now, horizon)
                refused += 1
                if refused > self.retries:
                    break
            ready = earliest(root, tokens)
        raise NoCapacity(group, None if ready == NEVER else max(0.0, ready - now))

    def _finished(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        now: float,
    ) -> None:
        """Deliver a release or failure the scheduler has just applied to its view (under
        its lock). Queues it when Redis is unreachable; never raises for that."""
        lease_id = self._leases.pop(lease, None)
        if lease_id is None:  # admitted while failing open: Redis never counted it
            return
        mode = "" if not failed else ("p" if retry_after is None else "r")
        diff = 0.0 if tokens is None else tokens - lease.tokens
        gates = self._on(lease._items)
        self._pending.append(_Pending(gates, lease_id, diff, mode, retry_after or 0.0, now))
        try:
            self._round_trip(None, [], "", NO_ARGS, (), now, now + tolerance(now))
        except _Down:
            self._queue(self._pending.pop())

    def _queue(self, pending: _Pending) -> None:
        """Keep a release Redis did not confirm, for the next round trip that succeeds."""
        pending.late = True
        self._pending.append(pending)
        self.stats.queued += 1
        if len(self._pending) > self.max_pending:
            lost = self._pending.popleft()
            self.stats.dropped += 1
            log.error("ratetree: dropped an undelivered release of lease %s", lost.lease_id)

    # ----------------------------------------------------------------- plumbing

    def _on(self, items: Sequence[Gate]) -> list[_Remote]:
        gates = self._gates
        return [gates[id(i)] for i in items if id(i) in gates]

    def _subtree(self, root: GroupState) -> list[_Remote]:
        found = self._subtrees.get(id(root))
        if found is None:
            found = self._subtrees[id(root)] = self._on(below(root))
        return found

    def _call(
        self,
        script: Any,
        gates: list[_Remote],
        lease_id: str,
        op: tuple[str, str, str, str],
        extra: tuple[str, ...],
    ) -> list[Any]:
        clock = self.clock
        keys: list[str] = []
        args = ["" if clock is None else repr(float(clock())), str(len(gates)), lease_id, *op]
        for gate in gates:
            keys += gate.keys
            args += gate.args
        keys += extra
        reply: list[Any] = script(keys=keys, args=args)
        self.stats.round_trips += 1
        return reply

    def _round_trip(
        self,
        script: Any,
        gates: list[_Remote],
        lease_id: str,
        op: tuple[str, str, str, str],
        extra: tuple[str, ...],
        now: float,
        horizon: float,
        backlog: int = BACKLOG,
    ) -> list[Any]:
        """Deliver up to ``backlog`` waiting releases, then run ``script`` (if any).
        Raises _Down for an unreachable Redis."""
        sent = False
        try:
            for _ in range(min(backlog, len(self._pending))):
                p = self._pending[0]
                # A late failure cools down only for what is left of its retry_after.
                left = max(0.0, p.retry_after - (now - p.at))
                sched = self._bound()
                first = str(sched.allowed_fails) if p.mode == "p" else repr(left)
                op_p = (repr(p.diff), p.mode, first, repr(sched.cooldown_time))
                fails = (p.gates[-1].fails,) if p.mode == "p" else ()
                done = self._call(self._settle, p.gates, p.lease_id, op_p, fails)
                self._pending.popleft()
                if p.late:
                    self.stats.redelivered += 1
                self._apply(p.gates, done, now, horizon)
            sent = script is not None
            reply = [] if script is None else self._call(script, gates, lease_id, op, extra)
        except self._errors as exc:
            self.stats.unavailable += 1
            # The first error of an outage may have cut a script that ran; so may a
            # timeout. Later ones are refused connections.
            unsure = sent and (not self._down or isinstance(exc, self._timeout))
            if not self._down:
                self._down = True
                log.warning(
                    "ratetree: Redis unreachable (%s); failing %s", exc, self.on_unavailable
                )
            raise _Down(exc, unsure) from exc
        if self._down:
            self._down = False
            log.info("ratetree: Redis reachable again")
        return reply

    def _apply(self, gates: list[_Remote], reply: list[Any], now: float, horizon: float) -> None:
        """Copy the gates' state from a script's reply into the local view."""
        # The reply's moments are in the script's time; shift them into this clock's.
        offset = now - float(reply[1])
        wake = self._bound()._wake
        pos = 2
        for gate in gates:
            item = gate.item
            cool = reply[pos]
            item.cooling_until = float(cool) + offset if cool else -NEVER
            count = int(reply[pos + 1])
            if count >= 0:
                item.in_flight = count
            pos += 2
            for bucket in gate.buckets:
                full = reply[pos]
                bucket.full_at = float(full) + offset if full else -NEVER
                pos += 1
            wake.refresh(item, horizon)
            for edge in item.usage_watchers:
                edge.tier.update(edge)
            for edge in item.busy_watchers:
                edge.tier.update(edge)

    def _unavailable(self, group: str, down: _Down) -> StateUnavailable:
        return StateUnavailable(group, self.unavailable_retry_after, str(down.__cause__))

    def __repr__(self) -> str:
        return f"<RedisState prefix={self.prefix!r} replica={self.replica_id!r}>"
