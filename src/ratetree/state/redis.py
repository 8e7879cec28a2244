"""Shared limits across replicas: gate state kept in Redis, a whole path committed at once.

Each replica keeps its in-memory tree as a *view*: it selects a path locally as always,
then one script (``state.scripts.COMMIT``) checks every gate of the path against the
shared state and takes from all of them or from none. The script answers with the
authoritative state of those gates, which the replica copies into its view; a refusal
(another replica took the capacity) is answered the same way, and the replica selects
again, at most ``retries`` times. Redis is the authority: the view only saves the round
trips a refused commit would cost, it never admits on its own.

A view can also be too pessimistic: another replica's release or refund is seen only when
this replica next touches the gate. So when the view refuses outright, the replica reads
the whole subtree of the requested group once (at most every ``sync_interval`` seconds
per group) before it answers NoCapacity.

Every round trip runs with the scheduler's lock free (see ``state.base``): the path is
committed to the view under the lock, the script runs without it, and its reply is
copied in under the lock again; a refused commit is first taken back in the view. Lease
ids are ``{replica_id}:{pid}:{n}``, so processes forked from one replica never share one.

Only gates that hold shared state are sent: every deployment (its cooldown), and groups
and references that carry limits. In-flight counts are shared only where a
``max_parallel_requests`` caps them; elsewhere they count this replica's leases, which is
all least-busy needs to spread them.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ratetree.core.buckets import NEVER
from ratetree.core.gates import Gate, GroupState, below
from ratetree.core.leases import Lease
from ratetree.core.reconfigure import edge_keys
from ratetree.errors import ConfigError, StateUnavailable
from ratetree.state.base import Host, Moment, StateBackend
from ratetree.state.breaker import Breaker, CircuitOpen
from ratetree.state.flusher import Flusher
from ratetree.state.memory import nothing
from ratetree.state.redis_checks import check_connection, describe, user_of
from ratetree.state.redis_guard import Guard
from ratetree.state.redis_settings import open_client, validate
from ratetree.state.redis_trips import (
    COMMIT_TRIP,
    FLUSH,
    QUIET,
    READ_TRIP,
    RENEW,
    Pending,
    RedisStats,
    RedisTrip,
    Remote,
    ScriptCall,
    copy_in,
)
from ratetree.state.scripts import COMMIT, READ, SETTLE
from ratetree.state.scripts import RENEW as RENEW_SCRIPT

if TYPE_CHECKING:
    import redis

    from ratetree.core.build import Tree

log = logging.getLogger("ratetree.redis")

__all__ = ["BACKLOG", "RedisState", "RedisStats"]

NO_ARGS = ("", "", "", "")
# Queued releases delivered before each operation; more wait for later ones (or flush),
# so one request after an outage does not pay for thousands of round trips.
BACKLOG = 64


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
    down; beyond it the oldest is dropped and logged.

    The circuit breaker (``state.breaker``): after Redis failed to answer, nothing is sent
    for ``backoff`` seconds, doubling with each failure in a row up to ``max_backoff``,
    each shortened by up to ``jitter`` of itself (drawn from ``rng``, by default the
    OS's random source, which forked workers do not share); meanwhile every
    operation is answered from ``on_unavailable`` at once. ``backoff=0`` turns it off.
    ``flush_interval``: while releases wait for delivery, a background thread tries every
    that many seconds (and at once when Redis answers again); :meth:`close` stops it.
    ``check``: talk to Redis once now (see ``state.redis_checks``), so that a wrong
    password, a failed TLS verification, a cluster node behind a plain client, a missing
    ACL permission or a script that does not load raise here rather than look like an
    outage later; an unreachable server is only logged.

    Pass it as ``Scheduler(spec, state=...)``; one RedisState serves one scheduler. Raises
    ConfigError for a bad value or URL, or a configuration error the check found (the
    message names the cause, never a password); ImportError without the ``redis`` package.
    """

    #: other processes share this state: waiting is not offered on it
    shared = True

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
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
        flush_interval: float = 1.0,
        check: bool = True,
    ) -> None:
        import redis  # the optional dependency, imported only when a RedisState is made

        validate(
            prefix,
            on_unavailable,
            positive={"lease_ttl": lease_ttl, "flush_interval": flush_interval},
            finite={
                "sync_interval": sync_interval,
                "unavailable_retry_after": unavailable_retry_after,
                "timeout": timeout,
            },
            counts={"retries": retries, "max_pending": max_pending},
        )
        breaker = Breaker(
            clock or time.monotonic,
            # drawn from the OS by default: processes forked from one replica share a
            # random.Random's state and would all probe at the same moment
            rng if rng is not None else random.SystemRandom(),
            backoff=backoff,
            max_backoff=max_backoff,
            jitter=jitter,
        )
        client = open_client(client, timeout)
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
        self.timeout = float(timeout)
        self.stats = RedisStats()
        self._errors = (redis.exceptions.RedisError, CircuitOpen)
        self._timeout = redis.exceptions.TimeoutError
        self._lost = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        self._user = user_of(client)
        self._cluster = isinstance(client, redis.cluster.RedisCluster)
        self._commit = client.register_script(COMMIT)
        self._settle = client.register_script(SETTLE)
        self._read = client.register_script(READ)
        self._renew = client.register_script(RENEW_SCRIPT)
        self._host: Host | None = None
        self._pid = os.getpid()
        self.breaker = breaker
        self._flusher = Flusher(self.flush, float(flush_interval))
        # Round trips of this process run one at a time, numbered in the order Redis ran
        # them; a gate's view takes a reply only if it is newer than the last one it took
        # (threads would otherwise apply replies out of order and leave stale counts).
        self._guard = Guard(breaker, self.reached, self._flusher.poke)
        self._gates: dict[int, Remote] = {}
        self._subtrees: dict[int, list[Remote]] = {}
        self._synced: dict[int, float] = {}
        self._leases: dict[Lease, str] = {}
        self._pending: deque[Pending] = deque()
        self._count = 0
        self._down = False
        if check:
            check_connection(client, prefix, on_unavailable, redis.cluster.RedisCluster)

    # ----------------------------------------------------------------- wiring (StateBackend)

    def bind(self, tree: Tree, host: Host) -> None:
        """Attach to the scheduler ``host`` (its constructor calls this). Raises
        ConfigError when this state already serves another scheduler."""
        if self._host is not None:
            raise ConfigError(f"{self!r} already serves another scheduler; make one per scheduler")
        self._host = host
        self.map(tree)

    def map(self, tree: Tree) -> None:
        """Name the Redis keys of ``tree``'s gates; the scheduler calls this again after a
        reconfiguration. Earlier trees' entries stay: leases granted on them still settle
        on their keys, which name gates by id, so a kept gate keeps its Redis state."""
        self._subtrees.clear()
        self._synced.clear()
        base = f"ratetree:{{{self.prefix}}}:"
        for d in tree.deployments.values():
            self._gates[id(d)] = Remote(d, base, f"d:{d.id}")
        for g in tree.groups.values():
            if g.limited:
                self._gates[id(g)] = Remote(g, base, f"g:{g.name}")
        # A reference is named as reconfigure identifies it, so a kept one keeps its state.
        for key, edge in edge_keys(tree).items():
            if edge.limited:
                self._gates[id(edge)] = Remote(edge, base, "r:" + json.dumps(key))

    @property
    def pending(self) -> int:
        """Releases and failures waiting to be delivered to Redis."""
        return len(self._pending)

    def close(self) -> None:
        """Stop the background delivery of queued releases (waiting up to ``timeout`` for
        a round trip it is in); what still waits is delivered by later operations or
        :meth:`flush`. The client stays open. Never raises."""
        self._flusher.close(self.timeout)

    def flush(self) -> int:
        """Try to deliver the waiting releases now; returns how many still wait. Never
        raises for an unreachable Redis."""
        host = self._bound()
        with host.locked() as moment:
            trip = self.delivery(moment.now)
        trip.run()
        with host.locked() as moment:
            trip.apply(moment, nothing)
            return len(self._pending)

    def delivery(self, now: float) -> RedisTrip:
        """Under the scheduler's lock: a trip that delivers every waiting release."""
        return self._trip(FLUSH, now, backlog=len(self._pending))

    def _bound(self) -> Host:
        if self._host is None:
            raise ConfigError(f"{self!r} is not attached to a scheduler yet")
        return self._host

    # ----------------------------------------------------------------- the scheduler's hooks

    def commit(self, lease: Lease, now: float) -> RedisTrip:
        """The round trip that commits ``lease``'s path in Redis (all gates or none)."""
        self._after_fork()
        self._count += 1
        lease_id = f"{self.replica_id}:{self._pid}:{self._count}"
        args = (repr(float(lease.tokens)), repr(self.lease_ttl), "", "")
        return self._trip(COMMIT_TRIP, now, self._on(lease.gates), lease_id, args, lease=lease)

    def refresh(self, root: GroupState, now: float) -> RedisTrip | None:
        """A read of ``root``'s whole subtree when the view refused, at most every
        ``sync_interval`` seconds per group."""
        if now - self._synced.get(id(root), -NEVER) < self.sync_interval:
            return None
        self._synced[id(root)] = now
        found = self._subtrees.get(id(root))
        if found is None:
            found = self._subtrees[id(root)] = self._on(below(root))
        return self._trip(READ_TRIP, now, found, group=root.name)

    def settle(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        now: float,
    ) -> RedisTrip | None:
        """The round trip that delivers a release or failure the view has just settled;
        queued for later when Redis is unreachable."""
        self._after_fork()
        lease_id = self._leases.pop(lease, None)
        if lease_id is None:  # admitted while failing open: Redis never counted it
            return None
        mode = "" if not failed else ("p" if retry_after is None else "r")
        diff = 0.0 if tokens is None else tokens - lease.tokens
        own = Pending(self._on(lease.gates), lease_id, diff, mode, retry_after or 0.0, now)
        return self._trip(FLUSH, now, own=own)

    def renew(self, lease: Lease, ttl: float | None, now: float) -> RedisTrip | None:
        """The round trip that keeps ``lease``'s in-flight slots ``ttl`` (default:
        ``lease_ttl``) more seconds; None for a lease Redis does not hold (settled, or
        admitted while failing open)."""
        lease_id = self._leases.get(lease)
        if lease_id is None:
            return None
        args = (repr(float(self.lease_ttl if ttl is None else ttl)), "", "", "")
        return self._trip(RENEW, now, self._on(lease.gates), lease_id, args)

    # ----------------------------------------------------------------- plumbing

    def _after_fork(self) -> None:
        """In a process forked since the last call: forget the parent's leases and queued
        releases (the parent settles those), and name new leases with this process id, so
        they never collide with the parent's or a sibling's in Redis."""
        pid = os.getpid()
        if pid != self._pid:
            self._pid, self._count = pid, 0
            self._leases.clear()
            self._pending.clear()

    def _trip(
        self,
        kind: str,
        now: float,
        gates: list[Remote] | None = None,
        lease_id: str = "",
        args: tuple[str, str, str, str] = NO_ARGS,
        *,
        lease: Lease | None = None,
        group: str = "",
        own: Pending | None = None,
        backlog: int = BACKLOG,
    ) -> RedisTrip:
        """A trip that first delivers up to ``backlog`` queued releases (and ``own``),
        taken off the queue now, under the scheduler's lock."""
        host = self._bound()
        queued = [self._pending.popleft() for _ in range(min(backlog, len(self._pending)))]
        if own is not None:
            queued.append(own)
        sends: list[tuple[Pending, ScriptCall]] = []
        for p in queued:
            # A late failure cools down only for what is left of its retry_after.
            left = max(0.0, p.retry_after - (now - p.at))
            first = str(host.allowed_fails) if p.mode == "p" else repr(left)
            op = (repr(p.diff), p.mode, first, repr(host.cooldown_time))
            fails = (p.gates[-1].fails,) if p.mode == "p" else ()
            sends.append((p, ScriptCall(self._settle, p.gates, p.lease_id, op, fails)))
        script = {COMMIT_TRIP: self._commit, READ_TRIP: self._read, RENEW: self._renew}.get(kind)
        main = None if script is None else ScriptCall(script, gates or [], lease_id, args, ())
        trip = RedisTrip(kind, sends, main, self._errors, self._land, self._call)
        trip.gates, trip.lease, trip.lease_id = gates or [], lease, lease_id
        trip.group = group or (lease.group if lease is not None else "")
        return trip

    def _on(self, items: Sequence[Gate]) -> list[Remote]:
        gates = self._gates
        return [gates[id(i)] for i in items if id(i) in gates]

    def _call(self, call: ScriptCall) -> list[Any]:
        """Run one script. Called with the scheduler's lock free."""
        keys, args = call.keys_args(self.clock)
        # The reply, then its place in the order Redis ran this process's scripts.
        return self._guard.call(partial(call.script, keys=keys, args=args))

    def reached(self, error: BaseException) -> bool | None:
        """Whether a call that raised ``error`` reached Redis (for the breaker): False for
        an outage, True for an answer (a configuration error too), None when ``error`` is
        not about Redis."""
        if not isinstance(error, self._errors):
            return None
        return not isinstance(error, self._lost) or self._problem(error) is not None

    def _problem(self, error: BaseException) -> str | None:
        return describe(error, self._user, self._cluster)

    def _land(self, trip: RedisTrip, moment: Moment, undo: Callable[[], None]) -> bool:
        """Under the scheduler's lock: account for a trip that ran and copy what Redis
        answered into the view. Raises StateUnavailable when failing closed."""
        now = moment.now
        stats = self.stats
        for (p, _), reply in zip(trip.sends, trip.delivered, strict=False):
            stats.round_trips += 1
            if p.late:
                stats.redelivered += 1
            copy_in(p.gates, reply, moment)
        left = [p for p, _ in trip.sends[len(trip.delivered) :]]
        for p in reversed([p for p in left if p.late]):
            self._pending.appendleft(p)  # still the oldest: first on the next trip
        for p in left:
            if not p.late:
                self._queue(p)
        error = trip.error
        if error is not None and not isinstance(error, self._errors):
            undo()  # not Redis being away (e.g. a clock that raised): take nothing
            raise error
        problem = None if error is None else self._problem(error)
        if error is None:
            if self._down:
                self._down = False
                log.info("ratetree: Redis reachable again")
        elif problem is not None:  # no outage: it will not pass, so say so every time
            stats.misconfigured += 1
            log.error("ratetree: %s; failing %s", problem, self.on_unavailable)
        else:
            stats.unavailable += 1
            # The first error of an outage may have cut a script that ran; so may a
            # timeout. Later ones are refused connections, or the breaker sent nothing.
            unsure = (
                trip.sent
                and not isinstance(error, CircuitOpen)
                and (not self._down or isinstance(error, self._timeout))
            )
            if not self._down and not isinstance(error, CircuitOpen):  # report the real cause
                self._down = True
                log.warning(
                    "ratetree: Redis unreachable (%s); failing %s", error, self.on_unavailable
                )
            if unsure and trip.kind == COMMIT_TRIP:  # it may have taken a slot: give it back
                self._queue(Pending(trip.gates, trip.lease_id, 0.0, "", 0.0, now))
        if error is not None:
            if trip.kind in QUIET or self.on_unavailable == "open":
                return trip.kind == COMMIT_TRIP  # fail open: the view alone admits
            undo()
            reason = StateUnavailable(
                trip.group, self.unavailable_retry_after, problem or str(error)
            )
            raise reason from error
        if trip.kind == FLUSH:
            return True
        reply = trip.reply
        stats.round_trips += 1
        if trip.kind == READ_TRIP:
            stats.syncs += 1
        elif trip.kind == RENEW:
            pass  # nothing to record; the gates' state is copied in below
        elif reply[0] in (b"1", "1"):
            assert trip.lease is not None
            self._leases[trip.lease] = trip.lease_id
        else:
            stats.refused += 1
            undo()  # before the reply: Redis's counts do not hold this commit
            copy_in(trip.gates, reply, moment)
            return False
        copy_in(trip.gates, reply, moment)
        return True

    def _queue(self, pending: Pending) -> None:
        """Keep a release Redis did not confirm, for the next round trip that succeeds."""
        pending.late = True
        self._pending.append(pending)
        self.stats.queued += 1
        self._flusher.start()
        while len(self._pending) > self.max_pending:
            lost = self._pending.popleft()
            self.stats.dropped += 1
            log.error("ratetree: dropped an undelivered release of lease %s", lost.lease_id)

    def __repr__(self) -> str:
        return f"<RedisState prefix={self.prefix!r} replica={self.replica_id!r}>"


if TYPE_CHECKING:

    def _is_a_backend(state: RedisState) -> StateBackend:  # mypy checks the protocol here
        return state
