"""Clocks: what a scheduler reads "now" from, and the rule it applies to every reading.

A **clock** is any zero-argument callable returning seconds (:class:`Clock`;
``time.monotonic`` by default). A clock that can also run a callback at a given moment is
a :class:`TimerClock`: a scheduler files its one wake-up timer for waiting requests there
instead of starting a thread (see ``ratetree.waiting.timers``). :class:`VirtualClock` is
both: time moves only when ``advance`` is called, and the timers due on the way run, each
at its own moment. The CLI's ``simulate`` runs on it; tests use its alias
:class:`ratetree.testing.FakeClock`.

**The clock rule.** A scheduler never lets time go backwards. It reads its clock once per
operation through :class:`SteadyReading`, which treats a reading that is NaN, infinite or
earlier than the last good one as that last good reading (before any good reading, as
0.0). So a broken clock can hold time still, which admits at most what the limits allow at
that moment, but can never refill a bucket, end a cooldown early or make a moment count
twice. The first backward step of each scheduler is logged once (logger ``"ratetree"``,
level WARNING). A refusal's ``retry_after`` is meant for the caller's clock: when the raw
reading is behind the scheduler's time by ``d``, ``retry_after`` includes ``d``, so the
caller who waits that long on its own clock arrives exactly when capacity is there.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable
from fractions import Fraction
from typing import Protocol, runtime_checkable

from ratetree.core.validate import number

__all__ = ["Clock", "SteadyReading", "TimerClock", "TimerHandle", "VirtualClock", "VirtualTimer"]

NEVER = float("inf")
log = logging.getLogger("ratetree")


class Clock(Protocol):
    """A source of time in seconds: ``time.monotonic`` or any callable like it."""

    def __call__(self) -> float: ...


class TimerHandle(Protocol):
    """A timer filed with a :class:`TimerClock`; ``cancel`` stops it from running."""

    def cancel(self) -> None: ...


@runtime_checkable
class TimerClock(Protocol):
    """A clock that also runs ``callback`` once it reaches ``when`` (on its own thread of
    control: :class:`VirtualClock` runs it inside ``advance``)."""

    def __call__(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], object]) -> TimerHandle: ...


class SteadyReading:
    """Applies the clock rule (see the module docstring) to one scheduler's readings.

    ``read()`` returns the scheduler's "now"; ``lag`` is then how far the raw reading lay
    behind it (0.0 for a good reading). Not thread-safe: the scheduler reads under its lock.
    """

    __slots__ = ("_warned", "clock", "lag", "last")

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.last = -NEVER
        self.lag = 0.0
        self._warned = False

    def read(self) -> float:
        """The current time, never earlier than the last one. Raises what the clock raises,
        changing nothing."""
        raw = self.clock()
        if self.last <= raw < NEVER:  # False for NaN, +inf and a step back
            self.last = raw
            self.lag = 0.0
            return raw
        return self.hold(raw)

    def hold(self, raw: float) -> float:
        """The reading for a ``raw`` one that is NaN, infinite or behind the last."""
        if self.last == -NEVER:  # NaN or infinite before any good reading: start at 0.0
            self.last = 0.0
        now = self.last
        # A finite reading behind now: the caller's clock is that far behind ours.
        self.lag = now - raw if raw == raw and abs(raw) < NEVER else 0.0
        if self.lag > 0 and not self._warned:
            self._warned = True
            log.warning(
                "ratetree: the clock went back %.9g s (from %r to %r); holding time at %r "
                "until it catches up (logged once per scheduler)",
                self.lag,
                now,
                raw,
                now,
            )
        return now


class VirtualTimer:
    """A callback filed with :meth:`VirtualClock.call_at`; ``cancel`` stops it."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A clock that moves only when told to: pass it as ``clock=`` and call ``advance``.

    Calling it returns the current time in seconds, as ``time.monotonic`` does. It is also
    a timer source (a :class:`TimerClock`): a scheduler given this clock files its one
    wake-up timer here with :meth:`call_at` instead of starting a thread, and ``advance``
    runs every timer that falls due on the way, each with the clock standing at its own
    moment. Steps add up exactly (as fractions of their float values), so any sequence of
    advances lands on the float nearest to their exact sum, and
    ``advance(7 - 1e-6); advance(1e-6)`` from 3.0 lands on 10.0 and runs a timer filed for
    10.0.
    """

    __slots__ = ("_exact", "_now", "_seq", "_timers")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._exact = Fraction(self._now)
        self._timers: list[tuple[float, int, VirtualTimer]] = []
        self._seq = 0

    def __call__(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> VirtualTimer:
        """Run ``callback`` once the clock reaches ``when`` (on the next ``advance``, even
        ``advance(0)``, if ``when`` has passed already)."""
        timer = VirtualTimer(when, callback)
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, timer))
        return timer

    @property
    def pending(self) -> int:
        """How many timers are filed and not cancelled."""
        return sum(not t.cancelled for _, _, t in self._timers)

    def advance(self, seconds: float) -> None:
        """Move the clock forward, running due timers in order of their moments. Raises
        InvalidRequest (a ValueError) for a negative or non-finite step."""
        self._exact += Fraction(number(seconds, "a clock's step"))
        target = float(self._exact)
        timers = self._timers
        while timers and timers[0][0] <= target:
            when, _, timer = heapq.heappop(timers)
            if not timer.cancelled:
                self._now = max(self._now, when)
                timer.callback()
        self._now = target

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._now!r})"
