"""Run a coroutine to its end from sync code, on event loops kept for it rather than one made
and closed per call (a loop's self-pipe alone costs more than the Router's filters it runs).

- A thread with no running loop uses a loop of its own, made on its first call and closed
  when the thread ends (or at interpreter exit). It is never set as the thread's event loop,
  so the caller's own (``asyncio.get_event_loop``) stays what it was.
- A thread already running a loop (a sync call made from async code, or a LiteLLM whose sync
  path runs on a loop of its own) cannot run a second one: the coroutine goes to one daemon
  thread kept by the :class:`Loops` (one per RatetreeRouting, stopped at ``detach``), with
  the caller's context variables, and the caller waits.

Plain asyncio and threading (no LiteLLM import).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class Loops:
    """The event loops one RatetreeRouting runs coroutines on from sync code.

    A process forked from one that made them gets its own on its first call: a loop's
    selector and a worker thread do not survive a fork."""

    __slots__ = ("_local", "_lock", "_pid", "_worker")

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._worker: _Worker | None = None
        self._pid = os.getpid()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to its end and return its result, raising what it raises: on this
        thread's kept loop, or, when a loop already runs on this thread, on the kept worker
        thread's loop with the caller's context variables."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return self._thread_loop().run_until_complete(coro)
        return self._the_worker().run(coro, contextvars.copy_context())

    def close(self) -> None:
        """Stop the worker thread, if one was started; this thread's loop is closed too.
        Other threads' loops close as those threads end."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None and self._pid == os.getpid():
            worker.stop()
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is not None:
            _close(kept.loop)

    def _forked(self) -> bool:
        pid = os.getpid()
        if pid == self._pid:
            return False
        # Forked: the parent's loops and worker are not ours to use or close.
        self._pid, self._local, self._worker = pid, threading.local(), None
        return True

    def _thread_loop(self) -> asyncio.AbstractEventLoop:
        self._forked()
        kept: _Kept | None = getattr(self._local, "kept", None)
        if kept is None or kept.loop.is_closed():
            kept = _Kept(asyncio.new_event_loop())
            # Runs when the thread's locals go (the thread ended) or at exit, if first.
            weakref.finalize(kept, _close, kept.loop)
            self._local.kept = kept
        return kept.loop

    def _the_worker(self) -> _Worker:
        with self._lock:
            self._forked()
            if self._worker is None:
                self._worker = _Worker()
            return self._worker


class _Kept:
    """What a thread keeps between calls; collected with the thread's locals."""

    __slots__ = ("__weakref__", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop


def _close(loop: asyncio.AbstractEventLoop) -> None:
    # At interpreter exit a daemon thread may still be inside its loop: leave that one be.
    if not loop.is_running() and not loop.is_closed():
        loop.close()


class _Worker:
    """A daemon thread running an event loop of its own until :meth:`stop`."""

    __slots__ = ("loop", "thread")

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="ratetree-sync-filters", daemon=True
        )
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], context: contextvars.Context) -> T:
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:  # on the worker, in ``context``: the task runs in a copy of it
            task = self.loop.create_task(coro)
            task.add_done_callback(lambda finished: _hand_over(finished, done))

        self.loop.call_soon_threadsafe(start, context=context)
        return done.result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread is not threading.current_thread():
            self.thread.join()
            self.loop.close()


def _hand_over(task: asyncio.Task[T], done: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        done.cancel()
    elif (error := task.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(task.result())
