"""Delivery of queued releases by an idle replica.

Releases Redis did not receive wait in the state's queue, and every later operation
delivers some of them first. A replica with no traffic would keep them, and their slots
stay taken in Redis until the lease TTL. A :class:`Flusher` is a daemon thread that, while
releases wait, calls the state's ``flush`` every ``interval`` seconds, and at once when
poked (the breaker closed: Redis answers again). ``flush`` takes the scheduler's lock only
to prepare and to fold its round trip, never during the I/O. The thread starts with the
first release queued, sleeps without waking while nothing waits, and ends with :meth:`close`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

__all__ = ["Flusher"]

log = logging.getLogger("ratetree.redis")


class Flusher:
    """Calls ``flush()`` (which returns how many releases still wait) from a daemon thread
    every ``interval`` seconds while some wait (from :meth:`start`), and at once on
    :meth:`poke`."""

    __slots__ = ("_closed", "_flush", "_lock", "_pid", "_thread", "_wake", "interval")

    def __init__(self, flush: Callable[[], int], interval: float) -> None:
        self._flush = flush
        self.interval = interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._closed = False

    def start(self) -> None:
        """Releases wait: deliver them within ``interval`` (starting the thread if need
        be). Redis has just failed, so there is no point in trying at once."""
        if self._closed:
            return
        if self._thread is None or self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():  # forked: the parent's thread is not here
                    self._thread, self._pid = None, os.getpid()
                    self._wake = threading.Event()
                if self._thread is None and not self._closed:
                    thread = threading.Thread(target=self._run, name="ratetree-flush", daemon=True)
                    self._thread = thread
                    thread.start()

    def poke(self) -> None:
        """Redis answers again: deliver what waits now."""
        self.start()
        self._wake.set()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def close(self, timeout: float | None = None) -> None:
        """Stop the thread and wait up to ``timeout`` seconds for it (it may be in a round
        trip). Later pokes do nothing."""
        self._closed = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        wake = self._wake
        waiting = True
        while True:
            # Asleep until poked while nothing waits; every interval while something does.
            wake.wait(self.interval if waiting else None)
            wake.clear()
            if self._closed:
                return
            try:
                waiting = self._flush() > 0
            except Exception:  # e.g. a clock that raised: keep the thread, say why
                log.exception("ratetree: delivering queued releases failed")
                waiting = True
