"""One order tier of one group: the base class, which keeps the list of open members,
and the shuffle and least-busy strategies (round-robin is in ``_round_robin``,
usage-based in ``_usage_based``).

A tier only ever sees its *open* members (``add``/``remove`` are called when a member's
open flag changes, and around a selection that had to pass a member over), so a pick
costs O(1) or O(log n) however many members are exhausted.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import random
from collections.abc import Sequence

from ._state import Edge


class Tier:
    """Members of one group that share an ``order``; keeps the list of open ones."""

    __slots__ = ("edges", "open", "order")
    #: whether ``charge`` does anything, so the selector can skip calling it
    charges = False

    def __init__(self, order: int | None, edges: Sequence[Edge]) -> None:
        self.order = order
        self.edges = list(edges)
        self.open: list[Edge] = []
        for i, edge in enumerate(self.edges):
            edge.index = i
            edge.tier = self

    def add(self, edge: Edge) -> None:
        edge.open_pos = len(self.open)
        self.open.append(edge)

    def remove(self, edge: Edge) -> None:
        # Swap-remove keeps removal O(1); order in ``open`` carries no meaning.
        pos = edge.open_pos
        last = self.open.pop()
        if last is not edge:
            self.open[pos] = last
            last.open_pos = pos
        edge.open_pos = -1

    def pick(self, rng: random.Random, now: float) -> Edge | None:
        """The member the strategy would choose among the open ones, or None."""
        raise NotImplementedError

    def readd(self, edge: Edge) -> None:
        """Put back a member that one selection passed over."""
        self.add(edge)

    def charge(self, edge: Edge) -> None:
        """``edge`` was chosen and admitted: account for it (round-robin only)."""

    def update(self, edge: Edge) -> None:
        """A gate this member's rank depends on has changed (least-busy, usage-based)."""

    def _zero_weight_pick(self, rng: random.Random) -> Edge | None:
        # Members that lack the tier's weight key weigh 0: they serve only when no
        # weighted member can, so the group stays work-conserving.
        open_ = self.open
        return open_[int(rng.random() * len(open_))] if open_ else None


class ShuffleTier(Tier):
    """Weighted random choice over open members, through a Fenwick tree of weights."""

    __slots__ = ("_cumulative", "_eps", "_fenwick", "_top", "_total", "open_weight")

    def __init__(self, order: int | None, edges: Sequence[Edge]) -> None:
        super().__init__(order, edges)
        self._cumulative = list(itertools.accumulate(e.weight for e in self.edges))
        self._total = self._cumulative[-1]
        self._eps = 1e-9 * self._total
        top = 1
        while top * 2 <= len(self.edges):
            top *= 2
        self._top = top
        self._fenwick = [0.0] * (len(self.edges) + 1)
        self.open_weight = 0.0

    def add(self, edge: Edge) -> None:
        super().add(edge)
        if edge.weight:
            self._update(edge.index, edge.weight)

    def remove(self, edge: Edge) -> None:
        super().remove(edge)
        if edge.weight:
            self._update(edge.index, -edge.weight)

    def _update(self, index: int, delta: float) -> None:
        self.open_weight += delta
        tree = self._fenwick
        n = len(tree)
        i = index + 1
        while i < n:
            tree[i] += delta
            i += i & -i

    def _rebuild(self) -> None:
        # Repeated float additions drift; rebuilding restores exact sums.
        tree = [0.0] * len(self._fenwick)
        n = len(tree)
        for edge in self.open:
            i = edge.index + 1
            while i < n:
                tree[i] += edge.weight
                i += i & -i
        self._fenwick = tree
        self.open_weight = sum(e.weight for e in self.open)

    def _find(self, u: float) -> int:
        tree = self._fenwick
        n = len(tree)
        pos = 0
        step = self._top
        while step:
            nxt = pos + step
            if nxt < n and tree[nxt] <= u:
                pos = nxt
                u -= tree[nxt]
            step >>= 1
        return pos

    def pick(self, rng: random.Random, now: float) -> Edge | None:
        if len(self.open) == len(self.edges) and self._total > 0:
            # Nobody is closed: a bisection in C over fixed sums beats the Fenwick walk.
            return self.edges[bisect.bisect(self._cumulative, rng.random() * self._total)]
        for _ in range(2):
            if self.open_weight <= self._eps:
                break
            i = self._find(rng.random() * self.open_weight)
            if i < len(self.edges):
                edge = self.edges[i]
                if edge.open_pos >= 0 and edge.weight:
                    return edge
            self._rebuild()
        return self._zero_weight_pick(rng)


class LeastBusyTier(Tier):
    """The open member with the fewest leases in flight below it; ties broken at random.

    Open members are filed in lists by load (a bucket queue), so a pick is O(1) and a
    lease that starts or ends moves one member between neighbouring lists.
    """

    __slots__ = ("_levels", "_lowest")

    def __init__(self, order: int | None, edges: Sequence[Edge]) -> None:
        super().__init__(order, edges)
        self._levels: dict[int, list[Edge]] = {}
        self._lowest = 0

    def add(self, edge: Edge) -> None:
        super().add(edge)
        self._file(edge, edge.child.in_flight)

    def remove(self, edge: Edge) -> None:
        super().remove(edge)
        self._unfile(edge)

    def update(self, edge: Edge) -> None:
        if edge.open_pos < 0:
            return
        # Moves the member from its old load's list to its new one: ``_unfile`` and
        # ``_file`` written out, as this runs for every member of the path, twice per
        # request, and the two calls were about a tenth of a least-busy acquire + release.
        levels = self._levels
        old = levels[edge.load]
        last = old.pop()
        if last is not edge:
            old[edge.load_pos] = last
            last.load_pos = edge.load_pos
        load = edge.child.in_flight
        new = levels.get(load)
        if new is None:
            new = levels[load] = []
        edge.load = load
        edge.load_pos = len(new)
        new.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _file(self, edge: Edge, load: int) -> None:
        level = self._levels.setdefault(load, [])
        edge.load = load
        edge.load_pos = len(level)
        level.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _unfile(self, edge: Edge) -> None:
        level = self._levels[edge.load]
        last = level.pop()
        if last is not edge:
            level[edge.load_pos] = last
            last.load_pos = edge.load_pos
        edge.load_pos = -1

    def pick(self, rng: random.Random, now: float) -> Edge | None:
        if not self.open:
            return None
        levels = self._levels
        lowest = self._lowest
        while not levels.get(lowest):  # loads move by one, so this walk is short
            lowest += 1
        self._lowest = lowest
        level = levels[lowest]
        return level[int(rng.random() * len(level))]


def compact(heap: list[tuple[float, int, int]], edges: list[Edge]) -> None:
    """Drop dead entries once they outnumber the live ones, so a lazy heap stays small."""
    if len(heap) > 4 * len(edges) + 64:
        heap[:] = [entry for entry in heap if edges[entry[1]].version == entry[2]]
        heapq.heapify(heap)
