"""Queued waiters indexed by the deployments their groups reach.

Two groups *overlap* when they reach a common deployment (sharing any gate below them
means sharing the deployments below that gate). The wait queue serves overlapping waiters
in one order and lets a waiter hold back plain acquires on overlapping groups; this index
answers, without looking at the other waiters:

- whether any queued waiter overlaps a group (``holds``, on every acquire while anybody
  waits), and which (``overlapping``, for ``explain``);
- which waiters a change of capacity on some deployments can concern (``linked``): those
  whose groups reach them, and, through shared deployments, every waiter whose place in
  line or estimate depends on theirs. A pass over just these gives every waiter the
  outcome a pass over the whole queue would: the others share no gate with them, and
  nothing of theirs has changed.

``Blocked`` is what one pass keeps: the groups it found blocked, and for a waiter the first
of them it is queued behind, found through whichever is smaller, the blocked groups or the
waiter's deployments.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, Protocol, TypeVar

from ratetree.core.gates import DeploymentState, GroupState, below


class Queued(Protocol):
    """What the index reads of a waiter: the live group it waits on."""

    @property
    def root(self) -> GroupState: ...


W = TypeVar("W", bound=Queued)


class WaiterIndex(Generic[W]):
    """Waiters by the ids of the deployments their groups reach, and the reach and
    overlap of groups, cached until ``clear`` (a reconfiguration builds new groups)."""

    __slots__ = ("_on", "_overlap", "_reach")

    def __init__(self) -> None:
        self._on: dict[str, set[W]] = {}  # deployment id -> waiters whose group reaches it
        self._reach: dict[GroupState, frozenset[str]] = {}  # deployment ids below a group
        self._overlap: dict[tuple[GroupState, GroupState], bool] = {}

    def add(self, waiter: W) -> None:
        on = self._on
        for d in self.reach(waiter.root):
            found = on.get(d)
            if found is None:
                on[d] = {waiter}
            else:
                found.add(waiter)

    def remove(self, waiter: W) -> None:
        """Forget ``waiter``, which must have been added with the same ``root``."""
        on = self._on
        for d in self.reach(waiter.root):
            found = on[d]
            found.discard(waiter)
            if not found:
                del on[d]

    def clear(self) -> None:
        self._on.clear()
        self._reach.clear()
        self._overlap.clear()

    def holds(self, root: GroupState) -> bool:
        """Whether some indexed waiter's group overlaps ``root``."""
        reach = self._reach.get(root)
        return not self._on.keys().isdisjoint(self.reach(root) if reach is None else reach)

    def waits_on(self, deployment: str) -> bool:
        """Whether some indexed waiter's group reaches ``deployment``."""
        return deployment in self._on

    def overlapping(self, root: GroupState) -> set[W]:
        """The indexed waiters whose groups overlap ``root``."""
        on = self._on
        return {w for d in self.reach(root) if d in on for w in on[d]}

    def linked(self, deployments: Iterable[str]) -> set[W]:
        """The waiters whose groups reach one of ``deployments``, and those linked to them
        in turn through a deployment their groups share: a connected part of the queue."""
        on = self._on
        found: set[W] = set()
        todo = [d for d in deployments if d in on]
        seen = set(todo)
        while todo:
            for w in on[todo.pop()]:
                if w not in found:
                    found.add(w)
                    for d in self.reach(w.root):
                        if d not in seen:
                            seen.add(d)
                            todo.append(d)
        return found

    def overlaps(self, a: GroupState, b: GroupState) -> bool:
        if a is b:
            return True
        key = (a, b) if id(a) < id(b) else (b, a)
        hit = self._overlap.get(key)
        if hit is None:
            hit = self._overlap[key] = not self.reach(a).isdisjoint(self.reach(b))
        return hit

    def reach(self, group: GroupState) -> frozenset[str]:
        """The ids of the deployments below ``group``."""
        reach = self._reach.get(group)
        if reach is None:
            found = {i.id for i in below(group) if isinstance(i, DeploymentState)}
            reach = self._reach[group] = frozenset(found)
        return reach


class Blocked(Generic[W]):
    """The groups a pass found blocked, in the order it found them, each with the moment
    its last waiter might pass; ``ahead`` finds the first that overlaps a group by
    looking at the fewer of the blocked groups and the group's deployments."""

    __slots__ = ("_first", "_index", "_rank", "ready")

    def __init__(self, index: WaiterIndex[W]) -> None:
        self._index: WaiterIndex[W] = index
        self.ready: dict[GroupState, float] = {}  # in the order first blocked
        self._rank: dict[GroupState, int] = {}
        self._first: dict[str, GroupState] = {}  # deployment id -> first blocked group on it

    def block(self, root: GroupState, ready: float) -> None:
        if root not in self._rank:
            self._rank[root] = len(self._rank)
            first = self._first
            for d in self._index.reach(root):
                first.setdefault(d, root)
        self.ready[root] = ready

    def ahead(self, root: GroupState) -> GroupState | None:
        """The first blocked group that overlaps ``root``, None if none does."""
        reach = self._index.reach(root)
        if len(self._rank) <= len(reach):
            overlaps = self._index.overlaps
            return next((b for b in self._rank if overlaps(root, b)), None)
        first = self._first
        found = [first[d] for d in reach if d in first]
        return min(found, key=self._rank.__getitem__) if found else None
