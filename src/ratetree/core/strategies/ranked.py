"""The shared machinery of strategies that pick the open member with the lowest key
(latency-based, cost-based): a subclass says what a deployment's key is.

A deployment member's key is the subclass's ``deployment_key``. A group member's key is
that of its best open path: the lowest key among the open members of the group's first
open tier (the tier the group would send the request to), recursively. Members whose key
is within ``buffer`` (a fraction of the lowest key) of the lowest are picked at random, so
a buffer of 0 still shares the traffic between equal keys.

When every group below the tier uses the same strategy (``indexed``), open members are
filed by key (``Levels``): a pick costs O(log k) for k distinct keys, and a group's key
is its first open tier's lowest key, kept current by pushing each change of a tier's
lowest key up to the references that point at its group. Otherwise (a group of another
strategy below) the keys are computed at each pick by a walk over the open members and
the open paths below them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from typing import TypeGuard

from ratetree.core.gates import DeploymentState, GroupState, Reference
from ratetree.core.strategies.base import Tier
from ratetree.core.strategies.levels import Levels


class RankedTier(Tier):
    """The open member with the lowest key; see the module docstring."""

    __slots__ = ("_levels", "buffer", "indexed", "owner")

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self.indexed = False  # decided by ``attach`` before members are added
        self.owner: GroupState | None = None
        self.buffer = 0.0  # members within ``buffer * lowest`` of the lowest key qualify
        self._levels = Levels(self.edges)

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
        """The lowest key of an open member (infinity if none); only kept while
        ``indexed``."""
        return self._levels.lowest()

    # -- membership --------------------------------------------------------------------

    def add(self, edge: Reference) -> None:
        super().add(edge)
        if self.indexed:
            before = self._summary()
            self._levels.file(edge, self.member_key(edge))
            self._propagate(before)

    def remove(self, edge: Reference) -> None:
        super().remove(edge)
        if self.indexed:
            before = self._summary()
            self._levels.unfile(edge)
            self._propagate(before)

    def update(self, edge: Reference) -> None:
        """The member's key may have changed: file it under its new one."""
        if not self.indexed or edge.open_pos < 0:
            return
        key = self.member_key(edge)
        levels = self._levels
        if key == edge.slot.key:
            return
        before = levels.lowest()
        levels.unfile(edge)
        levels.file(edge, key)
        if levels.lowest() != before:  # the open members stay: only the key can change
            self._refile_owner()

    def _summary(self) -> tuple[float, bool]:
        # A change of either can change the owning group's key.
        return self._levels.lowest(), bool(self.open)

    def _propagate(self, before: tuple[float, bool]) -> None:
        """Refile the owning group when this tier's lowest key, or whether it has open
        members, changed."""
        if self._summary() != before:
            self._refile_owner()

    def _refile_owner(self) -> None:
        """Refile the owning group in its parents' tiers of this strategy."""
        if self.owner is not None:
            for edge in self.owner.parents:
                if self._same_kind(edge.tier):
                    edge.tier.update(edge)

    # -- choosing ----------------------------------------------------------------------

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        if not self.open:
            return None
        if self.indexed:
            if not self.buffer:
                return self._levels.pick_lowest(rng)
            return self._levels.pick(rng, self._limit(self._levels.lowest()))
        # Without an index: every open member's key, computed now.
        keyed = [(self.member_key(e), e) for e in self.open]
        limit = self._limit(min(key for key, _ in keyed))
        chosen = [e for key, e in keyed if key <= limit]
        return chosen[int(rng.random() * len(chosen))]

    def _limit(self, best: float) -> float:
        """The highest key that qualifies when ``best`` is the lowest."""
        # Written out so an infinite key (an unpriced deployment) never meets 0 * inf.
        return best + self.buffer * best if self.buffer and best < math.inf else best
