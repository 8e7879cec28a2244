"""The pieces of a Redis round trip: each gate's keys and arguments (:class:`Remote`), a
release waiting to be delivered (:class:`Pending`), one script to run (:class:`ScriptCall`),
the trip itself (:class:`RedisTrip`, a ``state.base.Trip``), the counters
(:class:`RedisStats`) and the copy of a script's reply into the view (:func:`copy_in`).
The synchronous and the asyncio backend share all of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from ratetree.core.buckets import NEVER
from ratetree.core.gates import Gate
from ratetree.core.leases import Lease
from ratetree.state.base import Moment


class RedisStats:
    """Counters of one :class:`RedisState`, for metrics and tests."""

    __slots__ = (
        "dropped",
        "misconfigured",
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
        #: operations that found Redis unreachable (or skipped it: the breaker was open)
        self.unavailable = 0
        #: operations Redis refused for a configuration error (logged every time)
        self.misconfigured = 0
        #: releases and failures that could not be delivered and were queued
        self.queued = 0
        #: queued releases delivered later
        self.redelivered = 0
        #: queued releases given up because the queue was full (reported in the log)
        self.dropped = 0

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)}" for k in self.__slots__)
        return f"RedisStats({fields})"


class Remote:
    """One gate as the scripts see it: its keys and its descriptor arguments."""

    __slots__ = ("args", "buckets", "fails", "item", "keys", "ran")

    def __init__(self, item: Gate, base: str, name: str) -> None:
        self.item = item
        self.ran = 0  # the newest reply copied into the view (see RedisState._call)
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


class Pending:
    """A release or failure that Redis did not receive yet."""

    __slots__ = ("at", "diff", "gates", "late", "lease_id", "mode", "retry_after")

    def __init__(
        self,
        gates: list[Remote],
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


COMMIT_TRIP, READ_TRIP, FLUSH, RENEW = "commit", "read", "flush", "renew"
#: trips whose failure is never raised (their callers go on whatever Redis says)
QUIET = (FLUSH, RENEW)


class ScriptCall(NamedTuple):
    """One script to run: what it is and what it is run on, as data, so that a synchronous
    client can run it at once and an asyncio one can pipeline it with others."""

    script: Any  # a registered script: ``sha`` and ``script`` (its text)
    gates: list[Remote]
    lease_id: str
    op: tuple[str, str, str, str]
    extra: tuple[str, ...]

    def keys_args(self, clock: Callable[[], float] | None) -> tuple[list[str], list[str]]:
        """The script's KEYS and ARGV (see ``state.scripts``); reads ``clock`` (None: the
        server's TIME), so call it when the script is sent."""
        gates = self.gates
        keys: list[str] = []
        args = ["" if clock is None else repr(float(clock())), str(len(gates)), self.lease_id]
        args += self.op
        for gate in gates:
            keys += gate.keys
            args += gate.args
        keys += self.extra
        return keys, args


Call = Callable[[ScriptCall], list[Any]]


class RedisTrip:
    """One round trip (a ``state.base.Trip``): queued releases first, then one script.
    Prepared under the scheduler's lock; ``run`` talks to Redis with the lock free and
    keeps what happened; ``apply`` hands that to the state, under the lock again."""

    __slots__ = (
        "delivered",
        "error",
        "errors",
        "gates",
        "group",
        "kind",
        "land",
        "lease",
        "lease_id",
        "main",
        "reply",
        "send",
        "sends",
        "sent",
    )

    def __init__(
        self,
        kind: str,
        sends: list[tuple[Pending, ScriptCall]],
        main: ScriptCall | None,
        errors: tuple[type[Exception], ...],
        land: Callable[[RedisTrip, Moment, Callable[[], None]], bool],
        send: Call,
    ) -> None:
        self.kind = kind
        self.sends = sends
        self.main = main
        self.errors = errors
        self.land = land
        self.send = send
        self.delivered: list[list[Any]] = []
        self.reply: list[Any] = []
        self.error: Exception | None = None
        self.sent = False
        self.gates: list[Remote] = []
        self.lease: Lease | None = None
        self.lease_id = ""
        self.group = ""

    def run(self) -> None:
        try:
            send = self.send
            for _, call in self.sends:
                self.delivered.append(send(call))
            if self.main is not None:
                self.sent = True
                self.reply = send(self.main)
        except Exception as exc:  # kept for apply, which runs under the lock
            self.error = exc

    def apply(self, moment: Moment, undo: Callable[[], None]) -> bool:
        return self.land(self, moment, undo)


def copy_in(gates: list[Remote], reply: list[Any], moment: Moment) -> None:
    """Copy the gates' state from a script's reply into the local view."""
    # The reply's moments are in the script's time; shift them into this clock's.
    offset = moment.now - float(reply[1])
    horizon, wake = moment.horizon, moment.wake
    ran = reply[-1]
    pos = 2
    for gate in gates:
        item = gate.item
        if ran < gate.ran:  # a later reply already set this gate
            pos += 2 + len(gate.buckets)
            continue
        gate.ran = ran
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
