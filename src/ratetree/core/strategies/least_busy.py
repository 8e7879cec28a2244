"""The member with the fewest leases in flight (LiteLLM's ``least-busy``)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from ratetree.core.gates import GroupState, Reference
from ratetree.core.strategies.base import Tier


class LeastBusyTier(Tier):
    """The open member with the fewest leases in flight below it; ties broken at random.

    Open members are filed in lists by load (a bucket queue), so a pick is O(1) and a
    lease that starts or ends moves one member between neighbouring lists. Per member
    (by ``index``): the load it is filed under and its position in that load's list.
    """

    __slots__ = ("_levels", "_load", "_lowest", "_pos")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self._levels: dict[int, list[Reference]] = {}
        self._lowest = 0
        self._load = [0] * len(self.edges)
        self._pos = [-1] * len(self.edges)

    def attach(self, owner: GroupState, args: Mapping[str, object]) -> None:
        # A lease starting or ending below a member moves it to another load.
        for edge in self.edges:
            edge.child.busy_watchers += (edge,)

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
        levels, loads, positions = self._levels, self._load, self._pos
        i = edge.index
        old = levels[loads[i]]
        last = old.pop()
        if last is not edge:
            old[positions[i]] = last
            positions[last.index] = positions[i]
        load = edge.child.in_flight
        new = levels.get(load)
        if new is None:
            new = levels[load] = []
        loads[i] = load
        positions[i] = len(new)
        new.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _file(self, edge: Reference, load: int) -> None:
        level = self._levels.setdefault(load, [])
        self._load[edge.index] = load
        self._pos[edge.index] = len(level)
        level.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _unfile(self, edge: Reference) -> None:
        i = edge.index
        level = self._levels[self._load[i]]
        last = level.pop()
        if last is not edge:
            level[self._pos[i]] = last
            self._pos[last.index] = self._pos[i]
        self._pos[i] = -1

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
