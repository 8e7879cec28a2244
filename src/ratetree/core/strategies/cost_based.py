"""The cheapest open member (LiteLLM's ``cost-based-routing``)."""

from __future__ import annotations

import math

from ratetree.core.gates import DeploymentState
from ratetree.core.strategies.ranked import RankedTier


class CostBasedTier(RankedTier):
    """The open member with the lowest ``Deployment.cost`` (input plus output price per
    token); a group member ranks by its cheapest open path; ties at random. A deployment
    without a cost ranks after every priced one."""

    __slots__ = ()

    def deployment_key(self, deployment: DeploymentState) -> float:
        cost = deployment.spec.cost
        return math.inf if cost is None else cost
