"""A circuit breaker for a shared state that stopped answering.

A hung Redis (SIGSTOP, a network partition) makes every call wait its full timeout. After
one such failure the breaker *opens*: for a back-off interval nothing is sent, and every
operation is answered at once from the fail mode (refused when failing closed, admitted
from the local view when failing open). The first call after the interval is the one
*probe* (the others keep being answered from the fail mode while it runs); its success
closes the breaker, its failure opens it again for a longer interval.

The interval after the ``n``-th failure in a row is ``min(max_backoff, backoff * 2**(n-1))``
shortened by up to ``jitter`` of itself at random, so replicas that lost Redis together do
not all probe at the same moment. The clock and the random source are injected.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

from ratetree.core.validate import show
from ratetree.errors import ConfigError

__all__ = ["Breaker", "CircuitOpen", "check_breaker_settings"]


class CircuitOpen(Exception):
    """Raised instead of calling Redis while the breaker is open (never leaves ratetree:
    the state answers it from its fail mode, like an unreachable server)."""


#: what ``Breaker.allow`` answers
CLOSED, PROBE, SKIP = "closed", "probe", "skip"


def check_breaker_settings(backoff: object, max_backoff: object, jitter: object) -> None:
    """Raise ConfigError, naming the setting, unless ``backoff`` and ``max_backoff`` are
    finite numbers with 0 <= backoff <= max_backoff and ``jitter`` lies in [0, 1)."""
    for name, value in (("backoff", backoff), ("max_backoff", max_backoff), ("jitter", jitter)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} {show(value)} must be a number")
        if not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} {show(value)} must be a finite number >= 0")
    assert isinstance(backoff, (int, float)) and isinstance(max_backoff, (int, float))
    assert isinstance(jitter, (int, float))
    if max_backoff < backoff:
        raise ConfigError(f"max_backoff {show(max_backoff)} must be >= backoff {show(backoff)}")
    if jitter >= 1:
        raise ConfigError(f"jitter {show(jitter)} must be below 1 (a fraction of the interval)")


class Breaker:
    """Decides, before each call to the shared state, whether to make it. Thread-safe.

    ``backoff=0`` turns the breaker off: every call is made. Raises ConfigError for bad
    settings (see :func:`check_breaker_settings`).
    """

    __slots__ = (
        "_lock",
        "backoff",
        "clock",
        "failures",
        "jitter",
        "max_backoff",
        "opened",
        "probing",
        "rng",
        "skipped",
        "until",
    )

    def __init__(
        self,
        clock: Callable[[], float],
        rng: random.Random,
        *,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        jitter: float = 0.5,
    ) -> None:
        check_breaker_settings(backoff, max_backoff, jitter)
        self.clock = clock
        self.rng = rng
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.jitter = float(jitter)
        self._lock = threading.Lock()
        #: failures in a row; 0 while the breaker is closed
        self.failures = 0
        #: when the open breaker lets the next probe through (on ``clock``)
        self.until = -math.inf
        #: whether a probe is on its way
        self.probing = False
        #: times the breaker opened (from closed), and calls it answered without Redis
        self.opened = 0
        self.skipped = 0

    @property
    def open(self) -> bool:
        """Whether calls are being held back (a probe may be running)."""
        return self.failures > 0

    def allow(self) -> str:
        """Before a call: ``CLOSED`` (make it), ``PROBE`` (make it: this caller probes and
        must report with :meth:`record`) or ``SKIP`` (do not; answer from the fail mode)."""
        if not self.failures:  # the common case, without the lock
            return CLOSED
        with self._lock:
            if not self.failures:
                return CLOSED
            if self.probing or self.clock() < self.until:
                self.skipped += 1
                return SKIP
            self.probing = True
            return PROBE

    def record(self, reached: bool | None) -> bool:
        """After a call: ``reached`` True when the server answered (even with an error),
        False when it could not be reached (refused, timed out), None when the call never
        got to the server for a reason of its own. Returns True when this closed an open
        breaker (the moment to deliver what waited)."""
        if reached and not self.failures:  # the common case, without the lock
            return False
        with self._lock:
            if reached is None:
                self.probing = False  # another caller may probe; the interval stands
                return False
            if reached:
                was_open = self.failures > 0
                self.failures = 0
                self.probing = False
                return was_open
            if self.backoff <= 0:
                return False  # the breaker is off
            if not self.failures:
                self.opened += 1
            self.failures += 1
            self.probing = False
            self.until = self.clock() + self.interval(self.failures)
            return False

    def forked(self) -> None:
        """In a process forked from the one that made it: a new lock (a parent's thread
        may have held the old one at the fork), and closed."""
        self._lock = threading.Lock()
        self.failures, self.probing = 0, False

    def interval(self, failures: int) -> float:
        """The back-off after ``failures`` failures in a row, jitter drawn."""
        # 2**60 already dwarfs any max_backoff; the cap keeps the power finite.
        grown = min(self.max_backoff, self.backoff * 2.0 ** min(failures - 1, 60))
        return grown * (1.0 - self.jitter * self.rng.random())

    def __repr__(self) -> str:
        state = "closed" if not self.failures else f"open after {self.failures} failure(s)"
        return f"<Breaker {state}>"
