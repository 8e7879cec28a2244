"""The member with the fewest leases in flight (LiteLLM's ``least-busy``)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from ratetree.core.gates import Reference
from ratetree.core.strategies.base import Tier


class LeastBusyTier(Tier):
    """The open member with the fewest leases in flight below it; ties broken at random.

    Open members are filed in lists by load (a bucket queue), so a pick is O(1) and a
    lease that starts or ends moves one member between neighbouring lists.
    """

    __slots__ = ("_levels", "_lowest")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self._levels: dict[int, list[Reference]] = {}
        self._lowest = 0

    def add(self, edge: Reference) -> None:
        super().add(edge)
        self._file(edge, edge.child.in_flight)

    def remove(self, edge: Reference) -> None:
        super().remove(edge)
        self._unfile(edge)

    def update(self, edge: Reference) -> None:
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

    def _file(self, edge: Reference, load: int) -> None:
        level = self._levels.setdefault(load, [])
        edge.load = load
        edge.load_pos = len(level)
        level.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _unfile(self, edge: Reference) -> None:
        level = self._levels[edge.load]
        last = level.pop()
        if last is not edge:
            level[edge.load_pos] = last
            last.load_pos = edge.load_pos
        edge.load_pos = -1

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        if not self.open:
            return None
        levels = self._levels
        lowest = self._lowest
        while not levels.get(lowest):  # loads move by one, so this walk is short
            lowest += 1
        self._lowest = lowest
        level = levels[lowest]
        return level[int(rng.random() * len(level))]
