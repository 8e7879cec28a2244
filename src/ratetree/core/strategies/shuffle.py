"""Weighted random choice (LiteLLM's ``simple-shuffle``)."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence

from ratetree.core.gates import Reference
from ratetree.core.strategies.base import Tier


class ShuffleTier(Tier):
    """Weighted random choice over open members, through a Fenwick tree of weights."""

    __slots__ = ("_cumulative", "_eps", "_even", "_fenwick", "_top", "_total", "open_weight")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self._cumulative = list(itertools.accumulate(e.weight for e in self.edges))
        self._total = self._cumulative[-1]
        self._eps = 1e-9 * self._total
        # Every member weighs the same whole number (the common case: no weights given, or
        # equal rpm): a pick among all of them is then one multiplication, and picks the
        # member the bisection below would.
        first = self.edges[0].weight
        self._even = first > 0 and first == int(first) and all(e.weight == first for e in edges)
        top = 1
        while top * 2 <= len(self.edges):
            top *= 2
        self._top = top
        self._fenwick = [0.0] * (len(self.edges) + 1)
        self.open_weight = 0.0

    def add(self, edge: Reference) -> None:
        super().add(edge)
        if edge.weight:
            self._update(edge.index, edge.weight)

    def remove(self, edge: Reference) -> None:
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

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        edges = self.edges
        size = len(edges)
        if len(self.open) == size:  # nobody is closed
            if self._even:  # implies a total weight > 0
                return edges[int(rng.random() * size)]
            if self._total > 0:  # a bisection in C over fixed sums beats the Fenwick walk
                return edges[bisect.bisect(self._cumulative, rng.random() * self._total)]
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
