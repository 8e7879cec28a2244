"""The one door to Redis of a synchronous state: calls go through it one at a time, past a
circuit breaker (``state.breaker``), and are numbered in the order Redis ran them."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from ratetree.state.breaker import CLOSED, PROBE, SKIP, Breaker, CircuitOpen

__all__ = ["POLL", "Guard"]

# How often a caller waiting for its turn looks whether the breaker opened meanwhile: the
# call ahead of it may be hanging on a dead server, and it should not wait for that.
POLL = 0.002


class Guard:
    """Runs calls to Redis. ``reached(error)`` says whether a call that raised ``error``
    got an answer from the server (False: an outage, the breaker opens; None: the error is
    not about Redis); ``closed()`` is called, lock free, when a call closes an open
    breaker."""

    __slots__ = ("_io", "_pid", "breaker", "closed", "ran", "reached")

    def __init__(
        self,
        breaker: Breaker,
        reached: Callable[[BaseException], bool | None],
        closed: Callable[[], None],
    ) -> None:
        self.breaker = breaker
        self.reached = reached
        self.closed = closed
        self._io = threading.Lock()
        self._pid = os.getpid()
        #: calls that completed, in the order Redis ran them
        self.ran = 0

    def call(self, send: Callable[[], list[Any]]) -> list[Any]:
        """``send()``'s reply followed by its number in the order Redis ran this process's
        calls. Raises CircuitOpen without sending while the breaker holds calls back, and
        what ``send`` raises."""
        if self._pid != os.getpid():  # forked: a parent's thread may have held the locks
            self._io, self._pid = threading.Lock(), os.getpid()
            self.breaker.forked()
        breaker = self.breaker
        ticket = breaker.allow()
        if ticket is SKIP:
            raise CircuitOpen("Redis did not answer lately; not asking again yet")
        io = self._io
        if ticket is PROBE:
            io.acquire()
        elif not io.acquire(False):
            while not io.acquire(timeout=POLL):
                if breaker.open:
                    raise CircuitOpen("Redis stopped answering while this call waited")
        try:
            if ticket is CLOSED and breaker.open:  # it opened while this one waited
                raise CircuitOpen("Redis stopped answering while this call waited")
            reached: bool | None = None
            try:
                reply = send()
                reached = True
            except Exception as exc:
                reached = self.reached(exc)
                raise
            finally:
                closing = breaker.record(reached)
            self.ran += 1
            ran = self.ran
        finally:
            io.release()
        if closing:
            self.closed()
        return [*reply, ran]
