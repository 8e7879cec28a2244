"""Run a coroutine to its end from sync code, on event loops kept for it rather than one made
and closed per call (a loop's self-pipe alone costs more than the Router's filters it runs).

- A thread with no running loop uses a loop of its own, made on its first call and closed
  when the thread ends (or at interpreter exit). It is never set as the thread's event loop,
  so the caller's own (``asyncio.get_event_loop``) stays what it was.
- A thread already running a loop (a sync call made from async code, or a LiteLLM whose sync
  path runs on a loop of its own) cannot run a second one: the coroutine goes to one daemon
  thread kept for the process, with the caller's context variables, and the caller waits.

Plain asyncio and threading (no LiteLLM import).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextvars
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end and return its result, raising what it raises: on this
    thread's kept loop, or, when a loop already runs on this thread, on the kept worker
    thread's loop with the caller's context variables."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _thread_loop().run_until_complete(coro)
    return _worker().run(coro, contextvars.copy_context())


class _Kept:
    """What a thread keeps between calls; collected with the thread's locals."""

    __slots__ = ("__weakref__", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop


_local = threading.local()


def _close(loop: asyncio.AbstractEventLoop) -> None:
    # At interpreter exit a daemon thread may still be inside its loop: leave that one be.
    if not loop.is_running() and not loop.is_closed():
        loop.close()


def _thread_loop() -> asyncio.AbstractEventLoop:
    kept: _Kept | None = getattr(_local, "kept", None)
    if kept is None or kept.loop.is_closed():
        kept = _Kept(asyncio.new_event_loop())
        # Runs when the thread's locals go (the thread ended) or at exit, whichever is first.
        weakref.finalize(kept, _close, kept.loop)
        _local.kept = kept
    return kept.loop


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
        self.thread.join()
        self.loop.close()


def _hand_over(task: asyncio.Task[T], done: concurrent.futures.Future[T]) -> None:
    if task.cancelled():
        done.cancel()
    elif (error := task.exception()) is not None:
        done.set_exception(error)
    else:
        done.set_result(task.result())


_worker_lock = threading.Lock()
_workers: list[_Worker] = []  # at most one


def _worker() -> _Worker:
    with _worker_lock:
        if not _workers:
            _workers.append(_Worker())
            atexit.register(_workers[0].stop)
        return _workers[0]
