"""Mutable runtime state: one object per deployment, group and reference, never per path.

Every such object is a *gate*: it has request buckets, token buckets, an in-flight count
with an optional cap, and (for deployments) a cooldown. A gate is **open** when a minimal
request (one request, zero tokens) could pass it now *and* something below it is open. The
open flags are kept up to date incrementally, so selection only ever looks at open members:

- a commit, a release or a failure refreshes the gates it touched;
- a gate that closes because of time (an empty bucket, a cooldown) files a wake-up in a
  heap, which the next operation drains once its clock reading has passed it;
- a change of a gate's flag is pushed up to every reference that points at it, and from
  there into the parent group's tier index, so shared nodes update every parent at once.

Openness only ever improves as time passes without operations, so a flag computed at the
last operation can be trusted until the next wake-up is due.

A closed gate also keeps ``earliest_open``, the earliest moment a minimal request could
get through it and below, pushed up the same way (a group takes the least of its members'
through a heap). A refused request reads its ``retry_after`` from there instead of walking the tree.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, cast

from ratetree.core.buckets import NEVER, Bucket

if TYPE_CHECKING:
    from ratetree.core.specs import Deployment, Group, Limits


class Tier(Protocol):
    """What gates and selection need of one order tier of a group (its strategy's index
    of open members); ``ratetree.core.strategies.base.Tier`` implements it."""

    order: int | None
    edges: list[Reference]
    open: list[Reference]
    charges: bool

    def add(self, ref: Reference) -> None: ...
    def remove(self, ref: Reference) -> None: ...
    def readd(self, ref: Reference) -> None: ...
    def update(self, ref: Reference) -> None: ...
    def charge(self, ref: Reference) -> None: ...
    def pick(self, rng: random.Random, now: float) -> Reference | None: ...


class Gate:
    """Limits and counters shared by deployments, groups and references."""

    __slots__ = (
        "busy_watchers",
        "cooling_until",
        "earliest_open",
        "in_flight",
        "is_open",
        "limited",
        "max_parallel",
        "req",
        "retired",
        "successor",
        "tok",
        "usage_watchers",
        "wake_at",
    )

    def __init__(self, limits: Limits) -> None:
        self.req: tuple[Bucket, ...] = tuple(Bucket(r) for r in limits.rpm)
        self.tok: tuple[Bucket, ...] = tuple(Bucket(r) for r in limits.tpm)
        self.max_parallel: int | float = (
            NEVER if limits.max_parallel_requests is None else limits.max_parallel_requests
        )
        self.in_flight = 0
        self.cooling_until = -NEVER
        self.is_open = True
        # While closed: the earliest moment a minimal request could pass this gate and
        # (for a group or reference) something below it, if nothing else happens; NEVER
        # when an in-flight cap holds it. While open: -NEVER. Kept current by
        # ``Wakeups.refresh``, it answers a refusal's retry_after without a walk.
        self.earliest_open = -NEVER
        self.wake_at: float | None = None
        # Only a limited gate can close by itself; others follow their children.
        self.limited = bool(limits)
        # Members whose place in their tier's index depends on this gate's leases in
        # flight (least-busy), or on its buckets (usage-based); a strategy's ``attach``
        # registers them, and every change of in-flight counts or buckets calls
        # ``tier.update`` on them.
        self.busy_watchers: tuple[Reference, ...] = ()
        self.usage_watchers: tuple[Reference, ...] = ()
        # Set when a reconfiguration replaces this tree: where this gate's state went
        # (None if it was removed). Leases granted before forward through it.
        self.retired = False
        self.successor: Gate | None = None

    @property
    def name(self) -> str:
        """How explain, snapshots and lease paths name this gate."""
        raise NotImplementedError

    def ready_at(self, tokens: float) -> float:
        """Earliest moment this gate's own buckets and cooldown let the request through,
        ignoring the in-flight cap. NEVER if ``tokens`` exceeds a token bucket."""
        t = self.cooling_until
        for b in self.req:
            r = b.ready_at(1)
            if r > t:
                t = r
        for b in self.tok:
            r = b.ready_at(tokens)
            if r > t:
                t = r
        return t

    def fits(self, tokens: float, horizon: float) -> bool:
        """Whether ``tokens`` fit every token bucket of this gate by ``horizon``."""
        # Bucket.ready_at written out in a plain loop: this runs for every gate of every
        # selection, and the call per bucket (or all() over a generator) costs more than
        # the arithmetic.
        for b in self.tok:
            if tokens > b.capacity or b.full_at + tokens * b.interval - b.period > horizon:
                return False
        return True


class Node(Gate):
    """A deployment or a group: what a reference points at. ``parents`` are the
    references that point here, one per member entry naming this node."""

    __slots__ = ("parents",)

    def __init__(self, limits: Limits) -> None:
        super().__init__(limits)
        self.parents: list[Reference] = []


class DeploymentState(Node):
    __slots__ = ("_failures", "id", "latency", "spec")

    def __init__(self, spec: Deployment) -> None:
        super().__init__(spec.limits)
        self.spec = spec
        self.id = spec.id
        self._failures: deque[float] | None = None
        # Seconds, a moving average of what releases reported (``Lease.release(latency=)``);
        # NaN until the first report. The latency-based strategy ranks by it.
        self.latency = math.nan

    @property
    def name(self) -> str:
        return self.id

    @property
    def failures(self) -> deque[float]:
        """Moments of recent failures, for ``allowed_fails``; made on first use, because an
        empty deque (~760 bytes) would be most of an idle deployment's memory."""
        fails = self._failures
        if fails is None:
            fails = self._failures = deque()
        return fails


class GroupState(Node):
    __slots__ = (
        "_filed",
        "edges",
        "max_tokens",
        "open_edges",
        "open_heap",
        "spec",
        "tiers",
    )

    def __init__(self, spec: Group) -> None:
        super().__init__(spec.limits)
        self.spec = spec
        self.edges: list[Reference] = []
        self.tiers: list[Tier] = []
        self.open_edges = 0
        self.max_tokens = NEVER
        # Members by ``earliest_open``, lazily: an entry is live while its number is the
        # member's ``open_seq``. Answers "how soon could anything below pass" in O(log n).
        self.open_heap: list[tuple[float, int, Reference]] = []
        self._filed = 0

    @property
    def name(self) -> str:
        return self.spec.name

    def file_earliest_open(self, edge: Reference) -> None:
        """Record a member's new ``earliest_open``."""
        self._filed += 1
        edge.open_seq = self._filed
        heap = self.open_heap
        heapq.heappush(heap, (edge.earliest_open, self._filed, edge))
        if len(heap) > 4 * len(self.edges) + 64:  # drop dead entries now and then
            heap[:] = [e for e in heap if e[1] == e[2].open_seq]
            heapq.heapify(heap)

    def best_earliest_open(self) -> float:
        """The smallest ``earliest_open`` among the members (NEVER if there are none)."""
        heap = self.open_heap
        while heap and heap[0][1] != heap[0][2].open_seq:
            heapq.heappop(heap)
        return heap[0][0] if heap else NEVER

    def members_by_earliest_open(self) -> Iterator[Reference]:
        """Members in ascending ``earliest_open``, found lazily without changing the heap."""
        heap = self.open_heap
        frontier = [(heap[0], 0)] if heap else []
        while frontier:
            entry, i = heapq.heappop(frontier)
            if entry[1] == entry[2].open_seq:
                yield entry[2]
            for j in (2 * i + 1, 2 * i + 2):
                if j < len(heap):
                    heapq.heappush(frontier, (heap[j], j))


class Reference(Gate):
    """A member reference: parent group -> child node, with its own limits."""

    __slots__ = (
        "child",
        "index",
        "open_pos",
        "open_seq",
        "order",
        "parent",
        "slot",
        "tier",
        "weight",
    )

    def __init__(
        self,
        parent: GroupState,
        child: DeploymentState | GroupState,
        limits: Limits,
        order: int | None,
    ) -> None:
        super().__init__(limits)
        self.parent = parent
        self.child = child
        self.order = order
        self.weight = 0.0
        self.index = -1  # position in its tier, set by the tier
        self.open_pos = -1  # position in the tier's open list, -1 while not listed
        self.tier: Tier = None  # type: ignore[assignment]  # set when the tier is built
        # The strategy's own per-member state: an object of the tier's choosing (a member
        # sits in one tier), so a reference carries no strategy's fields. Strategies that
        # keep it in lists indexed by ``index`` leave it None.
        self.slot: Any = None
        self.open_seq = 0  # the parent's number for this member's live ``earliest_open`` entry

    @property
    def name(self) -> str:
        return f"{self.parent.name} -> {self.child.name}"


def below(root: GroupState) -> list[Gate]:
    """Every gate reachable from ``root``, ``root`` included: groups, references and
    deployments, each once however many paths reach it."""
    seen: dict[int, Gate] = {}
    stack: list[Gate] = [root]
    while stack:
        item = stack.pop()
        if id(item) not in seen:
            seen[id(item)] = item
            if isinstance(item, GroupState):
                stack.extend(item.edges)
            elif isinstance(item, Reference):
                stack.append(item.child)
    return list(seen.values())


class Wakeups:
    """Keeps every gate's open flag true to its state and drains due wake-ups."""

    __slots__ = ("_seq", "heap")

    def __init__(self) -> None:
        #: (moment, sequence, gate); callers may peek at ``heap[0][0]`` before ``drain``
        self.heap: list[tuple[float, int, Any]] = []
        self._seq = 0

    def drain(self, horizon: float) -> None:
        """Re-check every gate whose wake-up is due by ``horizon``."""
        heap = self.heap
        while heap and heap[0][0] <= horizon:
            t, _, item = heapq.heappop(heap)
            if item.wake_at == t:
                item.wake_at = None
                self.refresh(item, horizon)

    def refresh(self, item: Gate, horizon: float) -> None:
        """Recompute ``item.is_open`` and ``item.earliest_open``, and push a change up to
        its parents, depth first in the order of ``parents``. A loop with its own stack
        rather than recursion, so no depth of references can exhaust Python's stack in
        the middle of a commit."""
        stack: list[Gate] | None = None  # made only when a node has several parents
        while True:
            ready = item.ready_at(0)
            held = item.in_flight >= item.max_parallel
            own_ok = not held and ready <= horizon
            if ready > horizon and ready != NEVER and item.wake_at != ready:
                item.wake_at = ready
                self._seq += 1
                heapq.heappush(self.heap, (ready, self._seq, item))
            own_until = NEVER if held else ready
            if isinstance(item, Reference):
                child = item.child
                now_open = own_ok and child.is_open
                earliest_open = -NEVER if now_open else max(own_until, child.earliest_open)
                parent = item.parent
                if now_open != item.is_open:
                    item.is_open = now_open
                    if now_open:
                        item.tier.add(item)
                        parent.open_edges += 1
                    else:
                        item.tier.remove(item)
                        parent.open_edges -= 1
                elif earliest_open == item.earliest_open:
                    if not stack:
                        return
                    item = stack.pop()
                    continue
                if earliest_open != item.earliest_open:
                    item.earliest_open = earliest_open
                    parent.file_earliest_open(item)
                item = parent
                continue
            if isinstance(item, GroupState):
                now_open = own_ok and item.open_edges > 0
                earliest_open = -NEVER if now_open else max(own_until, item.best_earliest_open())
            else:
                now_open = own_ok
                earliest_open = -NEVER if now_open else own_until
            if now_open != item.is_open or earliest_open != item.earliest_open:
                item.is_open = now_open
                item.earliest_open = earliest_open
                parents = cast(Node, item).parents  # a reference was handled above
                if len(parents) == 1:
                    item = parents[0]
                    continue
                if parents:
                    if stack is None:
                        stack = []
                    stack.extend(reversed(parents))
            if not stack:
                return
            item = stack.pop()
