"""Selection strategies: each is a :class:`Tier` subclass in a module of its own,
registered here by the name a :class:`ratetree.Group` spec uses."""

from __future__ import annotations

from ratetree.core.strategies.base import Tier
from ratetree.core.strategies.least_busy import LeastBusyTier
from ratetree.core.strategies.round_robin import RoundRobinTier
from ratetree.core.strategies.shuffle import ShuffleTier
from ratetree.core.strategies.usage_based import UsageBasedTier

TIER_CLASSES: dict[str, type[Tier]] = {
    "shuffle": ShuffleTier,
    "round-robin": RoundRobinTier,
    "least-busy": LeastBusyTier,
    "usage-based": UsageBasedTier,
}

__all__ = ["TIER_CLASSES", "Tier"]
