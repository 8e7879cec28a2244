"""Sync picks run the Router's async filter chain on event loops kept for them: one per
thread, closed when the thread ends, and one worker loop for sync calls made where a loop
already runs. The ``wire`` fixture checks after every test that nothing is left open."""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
import contextvars  # noqa: E402
import gc  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402
from typing import Any  # noqa: E402

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from litellm_wiring import MESSAGES, Wire, wiring  # noqa: E402
from ratetree.integrations.litellm.blocking import Loops  # noqa: E402

REQUEST = contextvars.ContextVar("REQUEST", default="none")


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


async def running_loop() -> asyncio.AbstractEventLoop:
    await asyncio.sleep(0)
    return asyncio.get_running_loop()


async def failing() -> None:
    await asyncio.sleep(0)
    raise LookupError("from the coroutine")


def in_thread(work: Any) -> Any:
    """``work()`` on a thread of its own, ended before this returns (or raises what it raised)."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(work())
        except Exception as err:  # handed to the test
            box.append(err)

    worker = threading.Thread(target=run)
    worker.start()
    worker.join()
    gc.collect()  # the thread's locals are gone; collect anything a cycle kept
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


def test_a_thread_keeps_one_loop_for_its_sync_calls_and_it_closes_when_the_thread_ends() -> None:
    kept = Loops()

    def three() -> list[asyncio.AbstractEventLoop]:
        loops = [kept.run(running_loop()) for _ in range(3)]
        with pytest.raises(RuntimeError):  # the kept loop is not the thread's event loop
            asyncio.get_running_loop()
        return loops

    loops = in_thread(three)
    assert loops[0] is loops[1] is loops[2]
    assert loops[0].is_closed()
    with pytest.raises(LookupError, match="from the coroutine"):
        in_thread(lambda: kept.run(failing()))


def test_a_sync_call_inside_a_running_loop_runs_on_the_kept_worker_with_its_context() -> None:
    kept = Loops()

    async def caller() -> tuple[asyncio.AbstractEventLoop, list[Any]]:
        REQUEST.set("mine")

        async def seen() -> tuple[asyncio.AbstractEventLoop, str]:
            return asyncio.get_running_loop(), REQUEST.get()

        found = [kept.run(seen()) for _ in range(3)]
        with pytest.raises(LookupError, match="from the coroutine"):
            kept.run(failing())
        return asyncio.get_running_loop(), found

    own, found = asyncio.run(caller())
    assert {value for _, value in found} == {"mine"}
    loops = {loop for loop, _ in found}
    assert len(loops) == 1 and own not in loops
    (worker,) = loops
    kept.close()  # as detach does: the worker thread stops and its loop closes
    assert worker.is_closed()  # stop() joined its thread first


def _in_child(kept: Loops, results: Connection) -> None:
    """In a forked process: a sync call made where a loop runs, as the parent made one."""

    async def caller() -> str:
        async def answer() -> str:
            return "child"

        return kept.run(answer())

    results.send(asyncio.run(caller()))


@pytest.mark.skipif(sys.platform == "win32", reason="os.fork is POSIX only")
def test_a_forked_process_makes_its_own_worker_rather_than_waiting_on_the_parents() -> None:
    # The parent's worker thread does not exist in a child: a call sent to it would wait
    # forever. The child notices the fork and starts a worker of its own.
    kept = Loops()

    async def warm() -> str:
        async def answer() -> str:
            return "parent"

        return kept.run(answer())

    assert asyncio.run(warm()) == "parent"
    fork = multiprocessing.get_context("fork")
    receive, send = fork.Pipe(duplex=False)
    child = fork.Process(target=_in_child, args=(kept, send))
    child.start()
    ready = receive.poll(30)
    child.join(30)
    assert ready and receive.recv() == "child"
    assert child.exitcode == 0
    kept.close()


class LoopRecorder(CustomLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.loops: list[asyncio.AbstractEventLoop] = []

    async def async_filter_deployments(
        self, model: str, healthy_deployments: list[Any], *args: Any, **kwargs: Any
    ) -> list[Any]:
        self.loops.append(asyncio.get_running_loop())
        return healthy_deployments


def test_sync_completions_from_a_thread_reuse_one_loop_for_the_routers_filters(
    wire: Wire,
) -> None:
    routing, router = wire()
    recorder = LoopRecorder()
    litellm.logging_callback_manager.add_litellm_callback(recorder)
    try:

        def calls() -> list[str]:
            return [
                router.completion(model="one", messages=MESSAGES).choices[0].message.content
                for _ in range(4)
            ]

        assert in_thread(calls) == ["ok"] * 4
    finally:
        litellm.logging_callback_manager.remove_callback_from_all_lists(recorder)
    # The filters ran for every pick (some LiteLLM versions run them twice per call), on
    # loops kept across calls rather than one made per call.
    assert len(recorder.loops) >= 4
    assert len(set(recorder.loops)) == 1
    assert routing.open_leases == 0
