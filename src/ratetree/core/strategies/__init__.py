"""Selection strategies: each is a :class:`~ratetree.core.strategies.base.Tier` subclass in
a module of its own, registered below by the name a :class:`ratetree.Group` spec uses.

Adding a strategy is a new module here plus one line in ``REGISTRY``. The registry names
each class by its import path rather than importing it, so that the specs can read the
names without importing the runtime state (which imports the specs); the tree builder
loads the class (``base.tier_class``) when a group uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

REGISTRY: Mapping[str, str] = MappingProxyType(
    {
        "shuffle": "ratetree.core.strategies.shuffle:ShuffleTier",
        "round-robin": "ratetree.core.strategies.round_robin:RoundRobinTier",
        "least-busy": "ratetree.core.strategies.least_busy:LeastBusyTier",
        "usage-based": "ratetree.core.strategies.usage_based:UsageBasedTier",
        "latency-based": "ratetree.core.strategies.latency_based:LatencyBasedTier",
        "cost-based": "ratetree.core.strategies.cost_based:CostBasedTier",
    }
)

__all__ = ["REGISTRY"]
