"""The member with the fewest leases in flight (LiteLLM's ``least-busy``)."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from ratetree.core.gates import GroupState, Reference
from ratetree.core.strategies.base import Tier
from ratetree.core.strategies.levels import take_out


class _Filed:
    """Where least-busy keeps a member: the list of its load it is filed in, and its
    position there (-1 while not filed)."""

    __slots__ = ("level", "pos")

    def __init__(self, level: list[Reference]) -> None:
        self.level = level
        self.pos = -1


class LeastBusyTier(Tier):
    """The open member with the fewest leases in flight below it; ties broken at random.

    Open members are filed in lists by load (a bucket queue), so a pick is O(1) and a
    lease that starts or ends moves one member between neighbouring lists. Each member's
    ``slot`` is a ``_Filed``.
    """

    __slots__ = ("_levels", "_lowest")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        # Members by load: ``_levels[load]``. A list, not a dict: loads are small
        # non-negative counts, and indexing a list is cheaper than a dict's ``get``.
        self._levels: list[list[Reference]] = [[]]
        self._lowest = 0
        for edge in self.edges:
            edge.slot = _Filed(self._levels[0])

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
        filed: _Filed = edge.slot
        old = filed.level
        last = old.pop()
        if last is not edge:
            pos = filed.pos
            old[pos] = last
            last.slot.pos = pos
        load = edge.child.in_flight
        try:
            new = self._levels[load]
        except IndexError:  # a load above every one filed so far (rare: no len() per move)
            new = self._level(load)
        filed.level = new
        filed.pos = len(new)
        new.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _level(self, load: int) -> list[Reference]:
        """The list of members at ``load``, made (with any below it) if there is none."""
        levels = self._levels
        while load >= len(levels):
            levels.append([])
        return levels[load]

    def _file(self, edge: Reference, load: int) -> None:
        level = self._level(load)
        filed = edge.slot
        filed.level = level
        filed.pos = len(level)
        level.append(edge)
        if load < self._lowest:
            self._lowest = load

    def _unfile(self, edge: Reference) -> None:
        take_out(edge.slot.level, edge)

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        levels = self._levels
        level = levels[self._lowest]
        if not level:  # nobody is left at the lowest load: walk up to the next one
            if not self.open:
                return None
            lowest = self._lowest
            while not levels[lowest]:  # loads move by one, so this walk is short
                lowest += 1
            self._lowest = lowest
            level = levels[lowest]
        return level[int(rng.random() * len(level))]
