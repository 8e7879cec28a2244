"""The index changes which waiters a pass looks at, never what happens to them: on random
trees, a queue whose passes look only at the waiters linked to a change and one whose
passes look at the whole queue (as before the index) grant the same leases, on the same
paths, at the same moments, and end the same waits with the same retry_after."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable

from hypothesis import event, given, settings
from hypothesis import strategies as st

from ratetree import Lease, NoCapacity, TreeSpec
from ratetree.core.build import Tree
from ratetree.state.memory import LocalState, MemoryState
from ratetree.testing import FakeClock
from ratetree.waiting.index import WaiterIndex
from ratetree.waiting.queue import Waiter, WaitQueue, wait_async
from strategies import tree_specs
from waiting_helpers import turn


class Everyone(WaiterIndex[Waiter]):
    """Links every queued waiter to every change: each pass covers the whole queue."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: set[Waiter] = set()

    def add(self, waiter: Waiter) -> None:
        super().add(waiter)
        self.queued.add(waiter)

    def remove(self, waiter: Waiter) -> None:
        super().remove(waiter)
        self.queued.discard(waiter)

    def clear(self) -> None:
        super().clear()
        self.queued.clear()

    def linked(self, deployments: Iterable[str]) -> set[Waiter]:
        return set(self.queued)


class Steady(random.Random):
    """Draws that do not depend on how many came before: the full passes try (and
    refuse) more waiters than the indexed ones, and each try draws."""

    def random(self) -> float:
        return 0.5

    def getrandbits(self, k: int) -> int:
        return 0


class Host:
    """A scheduler's state and queue without the scheduler: the view settles its leases
    the way ``Scheduler``'s does (the state first, then the waiters they concern)."""

    def __init__(self, spec: TreeSpec, index: WaiterIndex[Waiter]) -> None:
        self.clock = FakeClock()
        self.local = LocalState(
            Tree(spec), self.clock, Steady(), MemoryState(), 3, 5.0, lambda: None
        )
        self.queue = self.local.waiting = WaitQueue(self.local, index)
        self.leases: dict[int, Lease] = {}  # granted and not yet settled, by wait

    def reconfigure(self, spec: TreeSpec) -> None:
        with self.local.locked() as moment:
            self.local.reconfigure(Tree(spec), moment.now, moment.horizon)
            self.queue.regroup(moment.now, moment.horizon)


Outcome = tuple[float, str, object]
Wait = tuple[str, int, "float | None", int, bool]  # group, tokens, timeout, priority, fail_fast


async def waiter(host: Host, log: dict[int, Outcome], i: int, wait: Wait) -> None:
    try:
        lease = await wait_async(host.queue, *wait)
    except NoCapacity as ended:
        log[i] = (host.clock(), "ended", ended.retry_after)
    except (KeyError, ValueError) as refused:  # a reconfiguration took its group away
        log[i] = (host.clock(), "refused", type(refused).__name__)
    else:
        log[i] = (host.clock(), "granted", lease.path)
        host.leases[i] = lease


@settings(max_examples=80, deadline=None)
@given(spec=tree_specs(), other=tree_specs(), data=st.data())
def test_indexed_passes_serve_exactly_as_passes_over_the_whole_queue(
    spec: TreeSpec, other: TreeSpec, data: st.DataObject
) -> None:
    hosts = [Host(spec, WaiterIndex()), Host(spec, Everyone())]
    logs: list[dict[int, Outcome]] = [{}, {}]
    names = [g.name for g in spec.groups]
    loop = asyncio.new_event_loop()
    tasks: list[asyncio.Task[None]] = []
    try:
        for step in range(40):
            op = data.draw(
                st.sampled_from(["wait", "wait", "release", "advance", "cancel", "swap"])
            )
            if op == "wait":
                wait: Wait = (
                    data.draw(st.sampled_from(names)),
                    data.draw(st.sampled_from([0, 1, 7, 100])),
                    data.draw(st.sampled_from([None, 0.5, 30.0])),
                    data.draw(st.integers(0, 2)),
                    data.draw(st.booleans()),
                )
                for host, log in zip(hosts, logs, strict=True):
                    tasks.append(loop.create_task(waiter(host, log, step, wait)))
            elif op == "release":
                held = sorted(set(hosts[0].leases) & set(hosts[1].leases))
                if held:
                    i = data.draw(st.sampled_from(held))
                    fail = data.draw(st.booleans())
                    for host in hosts:
                        lease = host.leases.pop(i)
                        if fail:
                            lease.fail(retry_after=1.0)
                        else:
                            lease.release()
            elif op == "advance":
                seconds = data.draw(st.sampled_from([1e-3, 0.5, 7.0, 60.0]))
                for host in hosts:
                    host.clock.advance(seconds)
            elif op == "cancel" and tasks:
                pair = data.draw(st.integers(0, len(tasks) // 2 - 1)) if len(tasks) > 1 else 0
                for task in tasks[2 * pair : 2 * pair + 2]:
                    task.cancel()
            elif op == "swap":
                for host in hosts:
                    host.reconfigure(other)
                spec, other = other, spec
                names = [g.name for g in spec.groups]
            loop.run_until_complete(turn())
            assert logs[0] == logs[1]
            assert len(hosts[0].queue) == len(hosts[1].queue)
            if len(hosts[0].queue) > 1:
                event("two or more waiters queued")
        event(f"waits granted: {sum(o[1] == 'granted' for o in logs[0].values()) > 3}")
        event(f"waits ended: {sum(o[1] == 'ended' for o in logs[0].values()) > 0}")
    finally:  # a failed example leaves no task behind for the garbage collector
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()
