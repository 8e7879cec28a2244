"""The one wake-up timer a scheduler with waiters keeps.

A scheduler never needs more than one: it only ever has to wake at the earliest moment
some queued request could be served or must give up. Two sources:

- a :class:`ratetree.clocks.TimerClock`, one that offers ``call_at(when, callback)``
  (:class:`~ratetree.clocks.VirtualClock`, alias ``ratetree.testing.FakeClock``), files
  the timer itself, so tests and simulations drive waits by advancing virtual time;
- any other clock gets one daemon thread per scheduler, parked on a condition variable
  with a timeout computed from the clock. One thread serves every kind of waiter: asyncio
  tasks on any number of loops and blocked threads alike, where a loop's ``call_at`` could
  serve only its own loop and would have to be re-armed thread-safely from releases made
  on other threads. The thread exits after a while without work and is started again when
  needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from ratetree.clocks import Clock, TimerClock

# How long an idle timer thread stays parked before it exits (it restarts on demand).
IDLE_EXIT = 30.0


class Timer(Protocol):
    def arm(self, when: float) -> None: ...

    def disarm(self) -> None: ...


def make_timer(clock: Clock, fire: Callable[[], None]) -> Timer:
    """A timer on ``clock``: filed with the clock itself when it is a TimerClock (tests
    drive it by advancing the clock), else kept by a daemon thread."""
    if isinstance(clock, TimerClock):
        return ClockTimer(clock.call_at, fire)
    return ThreadTimer(clock, fire)


class ClockTimer:
    """A timer filed with the clock's own ``call_at``."""

    __slots__ = ("_call_at", "_fire", "_handle")

    def __init__(
        self, call_at: Callable[[float, Callable[[], None]], Any], fire: Callable[[], None]
    ):
        self._call_at = call_at
        self._fire = fire
        self._handle: Any = None

    def arm(self, when: float) -> None:
        self.disarm()
        self._handle = self._call_at(when, self._fire)

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class ThreadTimer:
    """A timer kept by one daemon thread that waits on a condition until the moment."""

    __slots__ = ("_clock", "_cond", "_fire", "_running", "_when")

    def __init__(self, clock: Callable[[], float], fire: Callable[[], None]) -> None:
        self._clock = clock
        self._fire = fire
        self._cond = threading.Condition(threading.Lock())
        self._when: float | None = None
        self._running = False

    def arm(self, when: float) -> None:
        with self._cond:
            self._when = when
            if self._running:
                self._cond.notify()
                return
            self._running = True
        threading.Thread(target=self._run, name="ratetree-timer", daemon=True).start()

    def disarm(self) -> None:
        with self._cond:
            self._when = None
            self._cond.notify()

    def _run(self) -> None:
        cond = self._cond
        while True:
            with cond:
                while True:
                    when = self._when
                    if when is None:
                        if not cond.wait(IDLE_EXIT) and self._when is None:
                            self._running = False
                            return
                        continue
                    delay = when - self._clock()
                    if delay <= 0:
                        self._when = None
                        break
                    cond.wait(delay)
            # Outside the condition: the callback takes the scheduler's lock, and arm() is
            # called while that lock is held.
            self._fire()
