"""Open members filed by a number, lowest first, for the strategies that rank by one
(usage-based, latency-based, cost-based).

Members with equal keys share a list, and a heap holds each distinct key once, so the
lowest key costs O(log k) for k distinct keys and a random member of it O(1): ties are
broken at random without walking them. A member's key and its position in its list are
kept in its ``slot`` (a ``Filed``).
"""

from __future__ import annotations

import heapq
import math
import random

from ratetree.core.gates import Reference


def take_out(level: list[Reference], edge: Reference) -> None:
    """Remove ``edge`` from ``level``, the list its ``slot.pos`` indexes, by moving the last
    member into its place: O(1), and order in a level carries no meaning."""
    pos = edge.slot.pos
    last = level.pop()
    if last is not edge:
        level[pos] = last
        last.slot.pos = pos
    edge.slot.pos = -1


class Filed:
    """Where ``Levels`` keeps a member (its ``slot``): the key it is filed under and its
    position in that key's list (-1 while not filed)."""

    __slots__ = ("key", "pos")

    def __init__(self) -> None:
        self.key = 0.0
        self.pos = -1


class Levels:
    """Members of one tier filed by key; see the module docstring. Owns the members'
    ``slot``."""

    __slots__ = ("_heap", "_levels", "_size")

    def __init__(self, edges: list[Reference]) -> None:
        self._size = len(edges)
        self._levels: dict[float, list[Reference]] = {}  # key -> members filed there
        self._heap: list[float] = []  # the keys of ``_levels``, each once
        for edge in edges:
            edge.slot = Filed()

    def file(self, edge: Reference, key: float) -> None:
        """File ``edge`` (not filed now) under ``key``, which must not be NaN."""
        levels = self._levels
        level = levels.get(key)
        if level is None:
            level = levels[key] = []
            heapq.heappush(self._heap, key)
            if len(self._heap) > 2 * self._size + 64:  # drop emptied keys now and then
                self._levels = levels = {k: v for k, v in levels.items() if v}
                self._heap = list(levels)
                heapq.heapify(self._heap)
        filed = edge.slot
        filed.key = key
        filed.pos = len(level)
        level.append(edge)

    def unfile(self, edge: Reference) -> None:
        """Take ``edge`` (filed now) out."""
        # An emptied list stays (and its key in the heap) until ``lowest`` passes it.
        take_out(self._levels[edge.slot.key], edge)

    def lowest(self) -> float:
        """The lowest key any member is filed under; infinity when none is filed."""
        heap, levels = self._heap, self._levels
        while heap:
            key = heap[0]
            if levels[key]:
                return key
            heapq.heappop(heap)
            del levels[key]
        return math.inf

    def pick_lowest(self, rng: random.Random) -> Reference | None:
        """A member at random among those filed under the lowest key; None when none is
        filed."""
        # ``lowest`` written out: this runs on every pick.
        heap, levels = self._heap, self._levels
        while heap:
            key = heap[0]
            level = levels[key]
            if level:
                n = len(level)
                return level[0] if n == 1 else level[int(rng.random() * n)]
            heapq.heappop(heap)
            del levels[key]
        return None

    def pick(self, rng: random.Random, limit: float) -> Reference | None:
        """A member at random among those filed under any key up to ``limit``, or under
        the lowest key when ``limit`` is below it; None when none is filed."""
        best = self.lowest()
        level = self._levels.get(best)
        if not level or limit <= best:
            return self.pick_lowest(rng)
        # Walk the heap's nodes down from the top while their keys qualify (a node's key
        # is never below its parent's).
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
