"""Helpers for tests of code that embeds ratetree."""

from __future__ import annotations

import heapq
from collections.abc import Callable

__all__ = ["FakeClock", "FakeTimer"]


class FakeTimer:
    """A callback filed with :meth:`FakeClock.call_at`; ``cancel`` stops it from running."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to: pass it as ``clock=`` and call ``advance``.

    Calling it returns the current time in seconds, as ``time.monotonic`` does. It is also
    a timer source: a scheduler given this clock files its one wake-up timer here with
    :meth:`call_at` instead of starting a thread, and ``advance`` runs every timer that
    falls due on the way, each with the clock standing at its own moment. So waits in
    ``acquire_async`` and ``acquire_wait`` are driven by the test, without real sleeping.
    """

    __slots__ = ("_now", "_seq", "_timers")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._timers: list[tuple[float, int, FakeTimer]] = []
        self._seq = 0

    def __call__(self) -> float:
        return self._now

    def call_at(self, when: float, callback: Callable[[], object]) -> FakeTimer:
        """Run ``callback`` once the clock reaches ``when`` (on the next ``advance``, even
        ``advance(0)``, if ``when`` has passed already)."""
        timer = FakeTimer(when, callback)
        self._seq += 1
        heapq.heappush(self._timers, (when, self._seq, timer))
        return timer

    @property
    def pending(self) -> int:
        """How many timers are filed and not cancelled."""
        return sum(not t.cancelled for _, _, t in self._timers)

    def advance(self, seconds: float) -> None:
        """Move the clock forward, running due timers in order of their moments. Raises
        ValueError for a negative or non-finite step."""
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"a clock only moves forward by a finite step, got {seconds!r}")
        target = self._now + seconds
        timers = self._timers
        while timers and timers[0][0] <= target:
            when, _, timer = heapq.heappop(timers)
            if not timer.cancelled:
                self._now = max(self._now, when)
                timer.callback()
        self._now = target

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
