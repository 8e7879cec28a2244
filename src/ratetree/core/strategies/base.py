"""One order tier of one group: the base class every strategy derives from, which keeps
the list of open members.

A tier only ever sees its *open* members (``add``/``remove`` are called when a member's
open flag changes, and around a selection that had to pass a member over), so a pick
costs O(1) or O(log n) however many members are exhausted.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Sequence

from ratetree.core.gates import Reference


class Tier:
    """Members of one group that share an ``order``; keeps the list of open ones."""

    __slots__ = ("edges", "open", "order")
    #: whether ``charge`` does anything, so the selector can skip calling it
    charges = False

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        self.order = order
        self.edges = list(edges)
        self.open: list[Reference] = []
        for i, edge in enumerate(self.edges):
            edge.index = i
            edge.tier = self

    def add(self, edge: Reference) -> None:
        edge.open_pos = len(self.open)
        self.open.append(edge)

    def remove(self, edge: Reference) -> None:
        # Swap-remove keeps removal O(1); order in ``open`` carries no meaning.
        pos = edge.open_pos
        last = self.open.pop()
        if last is not edge:
            self.open[pos] = last
            last.open_pos = pos
        edge.open_pos = -1

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        """The member the strategy would choose among the open ones, or None."""
        raise NotImplementedError

    def readd(self, edge: Reference) -> None:
        """Put back a member that one selection passed over."""
        self.add(edge)

    def charge(self, edge: Reference) -> None:
        """``edge`` was chosen and admitted: account for it (round-robin only)."""

    def update(self, edge: Reference) -> None:
        """A gate this member's rank depends on has changed (least-busy, usage-based)."""

    def _zero_weight_pick(self, rng: random.Random) -> Reference | None:
        # Members that lack the tier's weight key weigh 0: they serve only when no
        # weighted member can, so the group stays work-conserving.
        open_ = self.open
        return open_[int(rng.random() * len(open_))] if open_ else None


def compact(heap: list[tuple[float, int, int]], edges: list[Reference]) -> None:
    """Drop dead entries once they outnumber the live ones, so a lazy heap stays small."""
    if len(heap) > 4 * len(edges) + 64:
        heap[:] = [entry for entry in heap if edges[entry[1]].version == entry[2]]
        heapq.heapify(heap)
