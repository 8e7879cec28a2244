"""The open member with the lowest observed latency (LiteLLM's ``latency-based-routing``).

Latency is reported per request with ``Lease.release(latency=seconds)`` and kept per
deployment as an exponentially weighted moving average; ``observe_latency`` is the one
call the scheduler makes. A deployment nobody has reported on yet counts as 0 seconds, so
it is tried first (as in LiteLLM); members within ``lowest_latency_buffer`` (a fraction of
the lowest latency) of the lowest are picked at random.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ratetree.core.gates import DeploymentState, Gate, GroupState, Reference
from ratetree.core.strategies.base import reject_unknown
from ratetree.core.strategies.ranked import RankedTier
from ratetree.core.validate import number, show
from ratetree.errors import ConfigError

# LiteLLM averages the last 10 latencies; an EWMA over the same span weighs the newest
# observation 2 / (span + 1).
DEFAULT_SPAN = 10


def _smoothing(span: int) -> float:
    return 2.0 / (span + 1)


class LatencyBasedTier(RankedTier):
    """The open member with the lowest average latency; see the module docstring.

    ``strategy_args`` (LiteLLM's ``routing_strategy_args``): ``lowest_latency_buffer``
    (>= 0, default 0) and ``max_latency_list_size`` (the span of the moving average,
    default 10). LiteLLM's ``ttl`` and ``ttft_percentile`` are accepted and have no effect:
    averages never expire, and a release reports one latency.
    """

    __slots__ = ("smoothing",)
    ARGS = frozenset({"lowest_latency_buffer", "max_latency_list_size", "ttl", "ttft_percentile"})

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self.smoothing = _smoothing(DEFAULT_SPAN)

    @classmethod
    def check_args(cls, args: Mapping[str, object], where: str) -> None:
        reject_unknown(cls.ARGS, args, where)
        _read_args(args, where)

    def attach(self, owner: GroupState, args: Mapping[str, object]) -> None:
        super().attach(owner, args)
        self.buffer, span = _read_args(args, f"group {owner.name!r}")
        self.smoothing = _smoothing(span)

    def deployment_key(self, deployment: DeploymentState) -> float:
        latency = deployment.latency
        return 0.0 if latency != latency else latency  # NaN: never observed


def _read_args(args: Mapping[str, object], where: str) -> tuple[float, int]:
    """(lowest_latency_buffer, max_latency_list_size) from ``args``, checked."""
    buffer = number(
        args.get("lowest_latency_buffer", 0.0),
        f"{where}: lowest_latency_buffer",
        error=ConfigError,
    )
    span = args.get("max_latency_list_size", DEFAULT_SPAN)
    if isinstance(span, bool) or not isinstance(span, int) or span < 1:
        raise ConfigError(
            f"{where}: max_latency_list_size must be an integer >= 1, got {show(span)}"
        )
    for key in ("ttl", "ttft_percentile"):
        if key in args:
            number(args[key], f"{where}: {key}", positive=True, error=ConfigError)
    return buffer, span


def observe_latency(path: Sequence[Gate], seconds: float) -> None:
    """Fold a request's latency into the average of the deployment at the end of ``path``
    (a lease's gates) and refile that deployment in the latency-based tiers that list it.
    Does nothing when the path ends elsewhere (a deployment removed by a reconfiguration).
    ``seconds`` must already be checked (finite, >= 0)."""
    deployment = path[-1] if path else None
    if not isinstance(deployment, DeploymentState):
        return
    watchers: list[tuple[LatencyBasedTier, Reference]] = []
    for edge in deployment.parents:
        tier = edge.tier
        if isinstance(tier, LatencyBasedTier):
            watchers.append((tier, edge))
    old = deployment.latency
    if math.isnan(old):
        deployment.latency = seconds
    else:
        # The smoothing of the first latency-based group listing it (LiteLLM has one).
        smoothing = watchers[0][0].smoothing if watchers else _smoothing(DEFAULT_SPAN)
        deployment.latency = old + smoothing * (seconds - old)
    for tier, edge in watchers:
        tier.update(edge)
