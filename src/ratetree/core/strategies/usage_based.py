"""The usage-based strategy: the open member with the most left of its tightest limit."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

from ratetree.core.buckets import NEVER
from ratetree.core.gates import Gate, GroupState, Reference
from ratetree.core.strategies.base import Tier
from ratetree.core.strategies.levels import Levels


class UsageBasedTier(Tier):
    """The open member with the largest remaining fraction of its tightest limit.

    A bucket's remaining fraction at t is ``1 - max(0, full_at - t) / period``. When every
    bucket below the tier has the same period, no gate has an in-flight cap and every
    group below is usage-based too (``indexed``), the member whose path will be full again
    soonest has the most left *at any t*, so filing members by that moment (``Levels``)
    answers exactly in O(log n). A group member's moment is that of the best path through
    it, kept current by pushing every change of a tier's best up to the references that
    watch its group, so a composed group ranks its deployments as the flattened one would.

    In the index, ties go to the member that has been full the longest, then to one at
    random: unlimited members all stand at "always full" and share the traffic.
    Otherwise the fractions of each member's own gates (and the best path of an indexed
    group) are compared over the open members, ties broken at random: groups without
    limits of their own all stand at 1.0 there, and must share the traffic too.
    """

    __slots__ = ("_levels", "indexed", "owner", "periods", "rankable")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self.indexed = False  # decided by ``attach`` before members are added
        self.owner: GroupState | None = None
        # Bucket periods on and below the members, and whether none has an in-flight cap
        # and every group below is usage-based: what ``indexed`` is decided from.
        self.periods: frozenset[float] = frozenset()
        self.rankable = False
        self._levels = Levels(self.edges)  # open members by when full again

    def attach(self, owner: GroupState, args: Mapping[str, object]) -> None:
        self.owner = owner
        periods: set[float] = set()
        rankable = True
        for edge in self.edges:
            edge_periods, edge_rankable = _shape(edge)
            periods |= edge_periods
            rankable = rankable and edge_rankable
        self.periods = frozenset(periods)
        self.rankable = rankable
        self.indexed = rankable and len(periods) <= 1
        for edge in self.edges:
            # The rank reads the buckets of the member's target, and of the reference
            # itself when it is limited (only then does it have buckets of its own).
            edge.child.usage_watchers += (edge,)
            if edge.limited:
                edge.usage_watchers += (edge,)

    def add(self, edge: Reference) -> None:
        super().add(edge)
        if self.indexed:
            levels = self._levels
            before = levels.lowest()
            levels.file(edge, refilled_at(edge))
            self._propagate(before)

    def remove(self, edge: Reference) -> None:
        super().remove(edge)
        if self.indexed:
            levels = self._levels
            before = levels.lowest()
            levels.unfile(edge)
            self._propagate(before)

    def update(self, edge: Reference) -> None:
        if self.indexed and edge.open_pos >= 0:
            moment = refilled_at(edge)
            if moment == edge.slot.key:
                return
            levels = self._levels
            owner = self.owner
            if owner is None or not owner.usage_watchers:  # nobody ranks this group
                levels.unfile(edge)
                levels.file(edge, moment)
                return
            before = levels.lowest()
            levels.unfile(edge)
            levels.file(edge, moment)
            self._propagate(before)

    def _propagate(self, before: float) -> None:
        owner = self.owner
        if owner is not None and owner.usage_watchers and self.best_refill() != before:
            for edge in owner.usage_watchers:
                edge.tier.update(edge)

    def best_refill(self) -> float:
        """When the best open member's path is full again; NEVER if none is open."""
        return self._levels.lowest()

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        if self.indexed:
            return self._levels.pick_lowest(rng)
        best: Reference | None = None
        best_key = (NEVER, NEVER)
        ties = 0
        for edge in self.open:
            room = min(headroom(edge, now), headroom(edge.child, now))
            key = (-room, refilled_at(edge))
            if key < best_key:
                best, best_key, ties = edge, key, 1
            elif key == best_key:
                ties += 1
                if rng.random() * ties < 1:  # reservoir sampling over the ties
                    best = edge
        return best


def _periods(gate: Gate) -> set[float]:
    return {b.period for b in (*gate.req, *gate.tok)}


def _shape(edge: Reference) -> tuple[set[float], bool]:
    """The bucket periods on ``edge`` and below it, and whether no gate there has an
    in-flight cap and every group there is usage-based (with its tiers attached)."""
    child = edge.child
    periods = _periods(edge) | _periods(child)
    rankable = edge.max_parallel == NEVER and child.max_parallel == NEVER
    if isinstance(child, GroupState):
        for tier in child.tiers:
            if isinstance(tier, UsageBasedTier):
                periods |= tier.periods
                rankable = rankable and tier.rankable
            else:
                rankable = False
    return periods, rankable


def refilled_at(edge: Reference) -> float:
    """The moment every bucket on ``edge``, its target and (for an indexed usage-based
    group) the target's best path is full again."""
    # Plain loops: this runs for every member update on every request, and max() over a
    # generator of unpacked tuples cost several times as much.
    moment = -NEVER
    child = edge.child
    for buckets in (edge.req, edge.tok, child.req, child.tok):
        for b in buckets:
            if b.full_at > moment:
                moment = b.full_at
    if isinstance(child, GroupState):
        for tier in child.tiers:
            if tier.open and isinstance(tier, UsageBasedTier) and tier.indexed:
                best = tier.best_refill()
                if best > moment:
                    moment = best
                break
    return moment


def headroom(gate: Gate, now: float) -> float:
    """Remaining fraction (0..1) of the tightest limit on ``gate``; 1.0 when unlimited."""
    room = 1.0
    for b in (*gate.req, *gate.tok):
        frac = b.level(now) / b.capacity
        if frac < room:
            room = frac
    cap = gate.max_parallel
    if cap != NEVER:
        frac = 1.0 - gate.in_flight / cap
        if frac < room:
            room = frac
    return room
