"""Sync picks run the Router's async filter chain on event loops kept for them: one per
thread, closed when the thread ends, and one worker loop for sync calls made where a loop
already runs. The ``wire`` fixture checks after every test that nothing is left open."""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")

import asyncio  # noqa: E402
import contextvars  # noqa: E402
import gc  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

from litellm.integrations.custom_logger import CustomLogger  # noqa: E402

from litellm_wiring import MESSAGES, Wire, wiring  # noqa: E402
from ratetree.integrations.litellm.blocking import run_blocking  # noqa: E402

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
    def three() -> list[asyncio.AbstractEventLoop]:
        loops = [run_blocking(running_loop()) for _ in range(3)]
        with pytest.raises(RuntimeError):  # the kept loop is not the thread's event loop
            asyncio.get_running_loop()
        return loops

    loops = in_thread(three)
    assert loops[0] is loops[1] is loops[2]
    assert loops[0].is_closed()
    with pytest.raises(LookupError, match="from the coroutine"):
        in_thread(lambda: run_blocking(failing()))


def test_a_sync_call_inside_a_running_loop_runs_on_the_kept_worker_with_its_context() -> None:
    async def caller() -> tuple[asyncio.AbstractEventLoop, list[Any]]:
        REQUEST.set("mine")

        async def seen() -> tuple[asyncio.AbstractEventLoop, str]:
            return asyncio.get_running_loop(), REQUEST.get()

        found = [run_blocking(seen()) for _ in range(3)]
        with pytest.raises(LookupError, match="from the coroutine"):
            run_blocking(failing())
        return asyncio.get_running_loop(), found

    own, found = asyncio.run(caller())
    assert {value for _, value in found} == {"mine"}
    loops = {loop for loop, _ in found}
    assert len(loops) == 1 and own not in loops


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
