"""Renewal of the leases of streams that outlive a shared state's lease TTL.

On a shared state (``RedisState``) every in-flight slot expires ``lease_ttl`` seconds after
its acquire, so that a dead replica's slots come free. A stream can run longer than that;
its slot would then expire while the stream still runs, and the cap could be exceeded.
While such streams are open, a :class:`StreamRenewal` renews each of them every third of
the TTL (:meth:`ratetree.core.leases.Lease.renew`) on one timer (the clock's own
``call_at`` for a FakeClock, else a daemon thread; ``waiting.timers``), and stops once the
last one is settled. On an in-memory state nothing expires and nothing is renewed.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

from ratetree.clocks import Clock
from ratetree.core.leases import Lease
from ratetree.waiting.timers import make_timer

__all__ = ["StreamRenewal"]

log = logging.getLogger("ratetree.litellm")

#: renewals per lease TTL: two may fail (Redis away) before a slot expires
PER_TTL = 3


@runtime_checkable
class Expiring(Protocol):
    """A state whose slots expire (``RedisState``)."""

    lease_ttl: float


class StreamRenewal:
    """Renews the leases given to :meth:`track` every ``every`` seconds of ``clock`` until
    they are settled; with ``every`` None it does nothing."""

    __slots__ = ("_clock", "_every", "_leases", "_lock", "_timer", "renewals")

    def __init__(self, clock: Clock, every: float | None) -> None:
        self._clock = clock
        self._every = every
        self._lock = threading.Lock()
        self._leases: list[Lease] = []
        self._timer = make_timer(clock, self._fire) if every is not None else None
        #: leases renewed so far
        self.renewals = 0

    @classmethod
    def of(cls, state: object, clock: Clock) -> StreamRenewal:
        """The renewal a scheduler over ``state`` needs: every third of its lease TTL,
        or none for a state whose slots do not expire."""
        every = state.lease_ttl / PER_TTL if isinstance(state, Expiring) else None
        return cls(clock, every)

    def track(self, lease: Lease) -> None:
        """Renew ``lease`` (a stream's) until it is settled."""
        timer, every = self._timer, self._every
        if timer is None or every is None:
            return
        with self._lock:
            self._leases.append(lease)
            first = len(self._leases) == 1
        if first:
            timer.arm(self._clock() + every)

    def _fire(self) -> None:
        with self._lock:
            live = self._leases = [lease for lease in self._leases if lease.open]
            leases = list(live)
        for lease in leases:
            try:
                lease.renew()
            except Exception:  # e.g. a clock that raised; the stream itself goes on
                log.exception("ratetree: renewing the lease of a stream failed")
            else:
                self.renewals += 1
        with self._lock:
            again = bool(self._leases)
        if again and self._timer is not None and self._every is not None:
            self._timer.arm(self._clock() + self._every)
