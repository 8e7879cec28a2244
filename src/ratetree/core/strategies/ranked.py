"""The shared machinery of strategies that pick the open member with the lowest key
(latency-based, cost-based): a subclass says what a deployment's key is.

A deployment member's key is the subclass's ``deployment_key``. A group member's key is
that of its best open path: the lowest key among the open members of the group's first
open tier (the tier the group would send the request to), recursively. Members whose key
is within ``buffer`` (a fraction of the lowest key) of the lowest are picked at random, so
a buffer of 0 still shares the traffic between equal keys.

When every group below the tier uses the same strategy (``indexed``), open members are
filed by key in lists, one per distinct key, with a heap of the keys: a pick costs
O(log k) for k distinct keys, and a group's key is its first open tier's lowest key, kept
current by pushing each change of a tier's lowest key up to the references that point at
its group. Otherwise (a group of another strategy below) the keys are computed at each
pick by a walk over the open members and the open paths below them.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Mapping, Sequence
from typing import TypeGuard

from ratetree.core.gates import DeploymentState, GroupState, Reference
from ratetree.core.strategies.base import Tier


class RankedTier(Tier):
    """The open member with the lowest key; see the module docstring. Per member (by
    ``index``): the key it is filed under and its position in that key's list."""

    __slots__ = ("_heap", "_key", "_levels", "_pos", "buffer", "indexed", "owner")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self.indexed = False  # decided by ``attach`` before members are added
        self.owner: GroupState | None = None
        self.buffer = 0.0  # members within ``buffer * lowest`` of the lowest key qualify
        self._levels: dict[float, list[Reference]] = {}  # key -> open members filed there
        self._heap: list[float] = []  # the keys of ``_levels``, each once
        self._key = [0.0] * len(self.edges)
        self._pos = [-1] * len(self.edges)

    def deployment_key(self, deployment: DeploymentState) -> float:
        """The key of a deployment member (lower is picked first); never NaN."""
        raise NotImplementedError

    def attach(self, owner: GroupState, args: Mapping[str, object]) -> None:
        self.owner = owner
        self.indexed = all(
            all(self._same_kind(t) and t.indexed for t in edge.child.tiers)
            for edge in self.edges
            if isinstance(edge.child, GroupState)
        )

    def _same_kind(self, tier: object) -> TypeGuard[RankedTier]:
        """Whether ``tier`` ranks by the same key as this one."""
        return type(tier) is type(self)

    # -- keys --------------------------------------------------------------------------

    def member_key(self, edge: Reference) -> float:
        """The key of a member: its deployment's, or its group's best open path's."""
        child = edge.child
        if isinstance(child, GroupState):
            return self.path_key(child)
        return self.deployment_key(child)

    def path_key(self, group: GroupState) -> float:
        """The lowest key among the open members of ``group``'s first open tier
        (infinity if none is open)."""
        for tier in group.tiers:
            if tier.open:
                if self._same_kind(tier) and tier.indexed:
                    return tier.lowest()
                return min(self.member_key(e) for e in tier.open)
        return math.inf

    def lowest(self) -> float:
        """The lowest key filed (infinity if none); only meaningful while ``indexed``."""
        heap, levels = self._heap, self._levels
        while heap:
            key = heap[0]
            if levels[key]:
                return key
            heapq.heappop(heap)
            del levels[key]
        return math.inf

    # -- membership --------------------------------------------------------------------

    def add(self, edge: Reference) -> None:
        super().add(edge)
        if self.indexed:
            before = self._summary()
            self._file(edge, self.member_key(edge))
            self._propagate(before)

    def remove(self, edge: Reference) -> None:
        super().remove(edge)
        if self.indexed:
            before = self._summary()
            self._unfile(edge)
            self._propagate(before)

    def update(self, edge: Reference) -> None:
        """The member's key may have changed: file it under its new one."""
        if not self.indexed or edge.open_pos < 0:
            return
        key = self.member_key(edge)
        if key == self._key[edge.index]:
            return
        before = self._summary()
        self._unfile(edge)
        self._file(edge, key)
        self._propagate(before)

    def _file(self, edge: Reference, key: float) -> None:
        levels = self._levels
        level = levels.get(key)
        if level is None:
            level = levels[key] = []
            heapq.heappush(self._heap, key)
            if len(self._heap) > 2 * len(self.edges) + 64:  # drop emptied keys now and then
                self._levels = levels = {k: v for k, v in levels.items() if v}
                self._heap = list(levels)
                heapq.heapify(self._heap)
        i = edge.index
        self._key[i] = key
        self._pos[i] = len(level)
        level.append(edge)

    def _unfile(self, edge: Reference) -> None:
        # An emptied list stays (and its key in the heap) until ``lowest`` passes it.
        i = edge.index
        level = self._levels[self._key[i]]
        last = level.pop()
        if last is not edge:
            level[self._pos[i]] = last
            self._pos[last.index] = self._pos[i]
        self._pos[i] = -1

    def _summary(self) -> tuple[float, bool]:
        # A change of either can change the owning group's key.
        return self.lowest(), bool(self.open)

    def _propagate(self, before: tuple[float, bool]) -> None:
        """Refile the owning group in its parents' indexed tiers of this strategy when
        this tier's lowest key (or whether it has open members) changed."""
        owner = self.owner
        if owner is None or self._summary() == before:
            return
        for edge in owner.parents:
            if self._same_kind(edge.tier):
                edge.tier.update(edge)

    # -- choosing ----------------------------------------------------------------------

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        if not self.open:
            return None
        if not self.indexed:
            return self._scan(rng)
        best = self.lowest()
        level = self._levels[best]
        limit = best + self.buffer * best
        if limit == best:
            return level[int(rng.random() * len(level))]
        # Every key within the buffer: walk the heap's nodes down from the top while
        # their keys qualify (a node's key is never below its parent's).
        heap, levels = self._heap, self._levels
        lists: list[list[Reference]] = []
        total = 0
        stack = [0]
        while stack:
            j = stack.pop()
            if j < len(heap) and heap[j] <= limit:
                members = levels[heap[j]]
                if members:
                    lists.append(members)
                    total += len(members)
                stack += (2 * j + 1, 2 * j + 2)
        r = int(rng.random() * total)
        for members in lists:
            if r < len(members):
                return members[r]
            r -= len(members)
        return level[0]  # pragma: no cover - r < total

    def _scan(self, rng: random.Random) -> Reference | None:
        """The pick without an index: every open member's key, computed now."""
        keyed = [(self.member_key(e), e) for e in self.open]
        best = min(key for key, _ in keyed)
        limit = best + self.buffer * best
        chosen = [e for key, e in keyed if key <= limit]
        return chosen[int(rng.random() * len(chosen))]
