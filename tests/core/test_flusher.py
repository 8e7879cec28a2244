"""The background delivery thread (``ratetree.state.flusher``) with a stand-in ``flush``:
it sleeps until started, retries while something waits, wakes at once when poked, and
ends with ``close``."""

from __future__ import annotations

import threading

from ratetree.state.flusher import Flusher

# Long enough to pass for certain if the test fails; a passing test never waits for it.
LIMIT = 30.0


class Queue:
    """``flush`` that delivers one release per call and signals each call."""

    def __init__(self, waiting: int) -> None:
        self.waiting = waiting
        self.calls = 0
        self.called = threading.Semaphore(0)

    def flush(self) -> int:
        self.calls += 1
        self.waiting = max(0, self.waiting - 1)
        self.called.release()
        return self.waiting


def test_it_retries_every_interval_while_releases_wait_then_sleeps_until_poked() -> None:
    queue = Queue(3)
    flusher = Flusher(queue.flush, 0.001)
    assert not flusher.running
    flusher.start()
    for _ in range(3):
        assert queue.called.acquire(timeout=LIMIT)
    assert queue.waiting == 0
    # Nothing waits: no more calls until a poke (the breaker closed).
    assert not queue.called.acquire(timeout=0.05)
    queue.waiting = 1
    flusher.poke()
    assert queue.called.acquire(timeout=LIMIT)
    flusher.close(LIMIT)
    assert not flusher.running
    flusher.poke()  # closed: nothing starts again
    assert not flusher.running and queue.calls == 4


def test_a_flush_that_raises_is_logged_and_tried_again() -> None:
    calls = threading.Semaphore(0)
    failures = [RuntimeError("a clock that raised")]

    def flush() -> int:
        calls.release()
        if failures:
            raise failures.pop()
        return 0

    flusher = Flusher(flush, 0.001)
    flusher.start()
    assert calls.acquire(timeout=LIMIT) and calls.acquire(timeout=LIMIT)
    flusher.close(LIMIT)
    assert not flusher.running
