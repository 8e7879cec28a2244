"""Open leases of a LiteLLM Router's attempts, each settled exactly once whichever event
about it arrives first."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Hashable

from ratetree.clocks import Clock
from ratetree.core.leases import Lease
from ratetree.integrations.litellm.renewal import StreamRenewal
from ratetree.waiting.timers import make_timer

#: seconds a stream's lease stays open after its caller closed it or its task ended, for
#: LiteLLM's report of its usage (sent a moment after a stream's end, behind the callbacks
#: listed before ratetree's) to settle it first
CLOSE_GRACE = 1.0


class Ticket:
    """One open lease and what identifies the attempt it belongs to.

    ``owner`` is what runs the request (its asyncio task, or its thread for a sync call),
    ``stream`` whether the request asked for a stream: an owner's request that is no stream
    is over once the same owner starts another one.
    """

    __slots__ = ("call_id", "lease", "opened", "owner", "stream", "trace_id")

    def __init__(
        self,
        lease: Lease,
        trace_id: object,
        opened: float,
        owner: Hashable = None,
        stream: bool = False,
    ) -> None:
        self.lease = lease
        self.trace_id = trace_id
        self.opened = opened
        self.owner = owner
        self.stream = stream
        self.call_id: str | None = None  # the attempt's litellm_call_id, once a hook saw it


class Ledger:
    """Open leases by ticket. Every way out pops the ticket under the lock, so each lease is
    settled exactly once even when several events about one attempt arrive. Streams'
    leases are kept alive by ``renewal`` while open (see ``renewal``).

    A stream that ended without a word (its caller closed it, or its task ended) may still
    be reported: read to its end, LiteLLM reports its usage a moment later. Nothing tells
    the two apart, so its lease is released ``CLOSE_GRACE`` seconds later on ``clock``
    (a timer: a thread, or the clock's own ``call_at``) unless the report settles it first.
    """

    __slots__ = (
        "_by_call",
        "_by_owner",
        "_clock",
        "_due",
        "_lock",
        "_open",
        "_timer",
        "renewal",
    )

    def __init__(self, renewal: StreamRenewal | None = None, clock: Clock = time.monotonic) -> None:
        self.renewal = renewal
        self._lock = threading.Lock()
        self._open: dict[str, Ticket] = {}  # in order of opening, so the oldest come first
        self._by_call: dict[str, str] = {}
        self._by_owner: dict[Hashable, set[str]] = {}
        # key -> when its lease is released; in order of filing, so of release (one grace)
        self._due: dict[str, float] = {}
        self._clock = clock
        self._timer = make_timer(clock, self._release_due)

    @classmethod
    def renewing(cls, state: object, clock: Clock) -> Ledger:
        """A ledger that renews open streams as a scheduler over ``state`` needs."""
        return cls(StreamRenewal.of(state, clock), clock)

    def __len__(self) -> int:
        return len(self._open)

    def add(self, ticket: Ticket) -> tuple[str, bool]:
        """File ``ticket``; its key, and whether its owner is new to the ledger."""
        key = uuid.uuid4().hex
        with self._lock:
            self._open[key] = ticket
            keys = self._by_owner.get(ticket.owner)
            new = keys is None
            if keys is None:
                keys = self._by_owner[ticket.owner] = set()
            keys.add(key)
        if ticket.stream and self.renewal is not None:
            self.renewal.track(ticket.lease)
        return key, new

    def left_over(self, owner: Hashable, trace_id: object) -> list[Lease]:
        """Take the leases ``owner`` holds for other requests that are no streams: the owner
        runs one request at a time, so they ended without a word (a cancelled wait)."""
        with self._lock:
            keys = [
                key
                for key in self._by_owner.get(owner, ())
                if not self._open[key].stream and self._open[key].trace_id != trace_id
            ]
            return [lease for key in keys if (lease := self._pop(key)) is not None]

    def owner_done(self, owner: Hashable) -> list[Lease]:
        """Take every lease ``owner`` still holds and forget the owner: its task ended. A
        stream whose attempt started stays, released after ``CLOSE_GRACE``."""
        with self._lock:
            keys = self._by_owner.pop(owner, set())
            later = [key for key in keys if self._open[key].stream and self._open[key].call_id]
            self._release_later(later)
            return [lease for key in keys - set(later) if (lease := self._pop(key)) is not None]

    def closed(self, call_id: object) -> None:
        """The caller closed the stream of the attempt ``call_id``: release its lease (on
        its estimate) after ``CLOSE_GRACE`` unless an event settles it first."""
        if not isinstance(call_id, str):
            return
        with self._lock:
            key = self._by_call.get(call_id)
            if key is not None:
                self._release_later([key])

    def _release_later(self, keys: list[str]) -> None:
        if not keys:
            return
        when = self._clock() + CLOSE_GRACE
        first = not self._due
        for key in keys:
            self._due.setdefault(key, when)
        if first:
            self._timer.arm(when)

    def _release_due(self) -> None:
        """The timer fired: release what is due, and wait for the next."""
        now = self._clock()
        with self._lock:
            due = []
            for key, when in self._due.items():
                if when > now:
                    break
                due.append(key)
            leases = [lease for key in due if (lease := self._pop(key)) is not None]
            for key in due:
                self._due.pop(key, None)
            if self._due:
                self._timer.arm(next(iter(self._due.values())))
        for lease in leases:
            lease.release()

    def drain(self) -> list[Lease]:
        """Take every open lease."""
        with self._lock:
            return [lease for key in list(self._open) if (lease := self._pop(key)) is not None]

    def bind(self, key: object, call_id: object, deployment_id: str | None) -> None:
        """Remember which attempt (``litellm_call_id``) carries the lease of ``key``."""
        if not isinstance(key, str) or not isinstance(call_id, str):
            return
        with self._lock:
            ticket = self._open.get(key)
            if ticket is None or ticket.call_id is not None:
                return
            if deployment_id is not None and deployment_id != ticket.lease.deployment_id:
                return
            ticket.call_id = call_id
            self._by_call[call_id] = key

    def claim(self, key: object, call_id: object, deployment_id: str | None) -> Ticket | None:
        """Take the ticket an event reports on, or None if it is not ours or already settled.

        The attempt's ``litellm_call_id`` decides when a hook bound it; otherwise the ticket
        on the metadata does, provided the event names the lease's deployment and no other
        attempt was bound to the ticket (a retry shares the metadata of the first attempt).
        """
        with self._lock:
            bound = self._by_call.get(call_id) if isinstance(call_id, str) else None
            if bound is not None:
                return self._take(bound)
            if not isinstance(key, str):
                return None
            ticket = self._open.get(key)
            if ticket is None or (ticket.call_id is not None and ticket.call_id != call_id):
                return None
            if deployment_id is not None and deployment_id != ticket.lease.deployment_id:
                return None
            return self._take(key)

    def returned(self, key: object, deployment_id: str | None, owner: Hashable) -> Ticket | None:
        """Take the ticket of a call that is no stream and just returned on ``owner``'s
        thread, if it is that owner's."""
        if not isinstance(key, str):
            return None
        with self._lock:
            ticket = self._open.get(key)
            if ticket is None or ticket.stream or ticket.owner != owner:
                return None
            if deployment_id is not None and deployment_id != ticket.lease.deployment_id:
                return None
            return self._take(key)

    def take(self, key: object) -> Ticket | None:
        """Take the ticket of ``key`` whichever attempt it was bound to, or None if it is
        not ours or already settled."""
        if not isinstance(key, str):
            return None
        with self._lock:
            return self._take(key)

    def orphan(self, key: object, trace_id: object) -> Lease | None:
        """The lease a request still holds when the Router picks for it again."""
        if not isinstance(key, str):
            return None
        with self._lock:
            ticket = self._open.get(key)
            if ticket is None or ticket.trace_id != trace_id:
                return None
            return self._pop(key)

    def expired(self, before: float) -> list[Lease]:
        """Take every lease opened before ``before``."""
        with self._lock:
            keys = []
            for key, ticket in self._open.items():
                if ticket.opened > before:
                    break
                keys.append(key)
            return [lease for key in keys if (lease := self._pop(key)) is not None]

    def _pop(self, key: str) -> Lease | None:
        ticket = self._take(key)
        return None if ticket is None else ticket.lease

    def _take(self, key: str) -> Ticket | None:
        ticket = self._open.pop(key, None)
        if ticket is None:
            return None
        self._due.pop(key, None)
        if ticket.call_id is not None:
            self._by_call.pop(ticket.call_id, None)
        keys = self._by_owner.get(ticket.owner)
        if keys is not None:
            keys.discard(key)
            # A thread's entry goes with its last lease; a task's stays until the task ends,
            # so its done-callback is registered once however many requests it makes.
            if not keys and not isinstance(ticket.owner, asyncio.Task):
                del self._by_owner[ticket.owner]
        return ticket
