"""ratetree's Prometheus metrics in the LiteLLM proxy, served by the proxy's own ``/metrics``.

The proxy serves ``/metrics`` when ``prometheus`` is among its callbacks: from
prometheus_client's default registry with one worker, and with several (``--num_workers``,
where LiteLLM sets ``PROMETHEUS_MULTIPROC_DIR``) from the files every worker's metrics write
into that directory. Metrics made here land in both: counters add up across workers, and
each gauge says how its workers' values combine (``multiprocess_mode``). Gauges are
refreshed from :meth:`Scheduler.snapshot` every :data:`REFRESH` seconds, since in
multiprocess mode nothing can be computed at scrape time.

- ``ratetree_admitted_total{group}``: requests admitted, by the group asked for (an alias
  counts as its group);
- ``ratetree_refused_total{group, reason}``: requests refused for want of capacity, by why:
  ``rate_limit`` (a bucket: rpm or tpm), ``cooldown`` (every deployment the group reaches
  is cooling down), ``max_parallel_requests`` (requests in flight, no Retry-After) or
  ``state_unavailable`` (the shared Redis did not answer);
- ``ratetree_bucket_fill_ratio{deployment, model, limit}``: what is left of each of a
  deployment's buckets, as a share of its size (1 full, 0 empty, below 0 in debt);
- ``ratetree_cooldown_seconds{deployment, model}``: seconds of cooldown left (0: none);
- ``ratetree_queue_length``: requests waiting for capacity.

The deployment label is the id the proxy reports in ``x-litellm-model-id``; ``model`` is
its ``litellm_params.model``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from ratetree.core.explain import Explanation
from ratetree.scheduler import Scheduler

__all__ = ["REFRESH", "ProxyMetrics", "proxy_metrics", "refusal_reason"]

#: Seconds between two refreshes of the gauges.
REFRESH = 1.0


def refusal_reason(retry_after: object, message: str, explanation: Explanation | None) -> str:
    """Why a request was refused: from its 429 (whether it says when to retry, and what),
    and ``explanation``, the refused group's :meth:`Scheduler.explain` with the cooldowns
    found in it (see :func:`_all_cooling`)."""
    if "shared state unavailable" in message:
        return "state_unavailable"
    if retry_after is None:
        return "max_parallel_requests"
    if explanation is not None and _all_cooling(explanation):
        return "cooldown"
    return "rate_limit"


def _all_cooling(explanation: Explanation) -> bool:
    """Whether every deployment under ``explanation`` is held back by a cooldown."""
    found = False
    stack = [explanation]
    seen: set[int] = set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.kind == "deployment":
            if not any(reason.startswith("cooling down") for reason in node.reasons):
                return False
            found = True
        stack.extend(node.children)
    return found


class ProxyMetrics:
    """The metrics of one process, registered in prometheus_client's default registry
    (once per process: see :func:`proxy_metrics`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge

        self.admitted = Counter(
            "ratetree_admitted", "Requests ratetree admitted, by the group asked for", ["group"]
        )
        self.refused = Counter(
            "ratetree_refused",
            "Requests ratetree refused for want of capacity, by group and reason",
            ["group", "reason"],
        )
        self.bucket_fill = Gauge(
            "ratetree_bucket_fill_ratio",
            "What is left of a deployment's bucket, as a share of its size (below 0: in debt)",
            ["deployment", "model", "limit"],
            multiprocess_mode="livemostrecent",  # workers on one Redis see the same buckets
        )
        self.cooldown = Gauge(
            "ratetree_cooldown_seconds",
            "Seconds of cooldown a deployment has left (0: not cooling down)",
            ["deployment", "model"],
            multiprocess_mode="livemax",
        )
        self.queue = Gauge(
            "ratetree_queue_length",
            "Requests waiting for capacity",
            multiprocess_mode="livesum",
        )

    def refresh(self, scheduler: Scheduler) -> None:
        """Set the gauges from ``scheduler``'s state now."""
        snapshot = scheduler.snapshot()
        models = {d.id: _model(d.payload) for d in scheduler.spec.deployments}
        for deployment_id, gate in snapshot.deployments.items():
            model = models.get(deployment_id, "")
            self.cooldown.labels(deployment_id, model).set(gate.cooling_for)
            for bucket in gate.buckets:
                fill = bucket.remaining / bucket.rate.amount if bucket.rate.amount else 0.0
                limit = f"{bucket.kind} {bucket.rate}"
                self.bucket_fill.labels(deployment_id, model, limit).set(fill)
        self.queue.set(scheduler.waiting)


def _model(payload: object) -> str:
    params = payload.get("litellm_params") if isinstance(payload, Mapping) else None
    model: Any = params.get("model") if isinstance(params, Mapping) else None
    return model if isinstance(model, str) else ""


@functools.cache
def proxy_metrics() -> ProxyMetrics | None:
    """This process's metrics, made on the first call; None without prometheus_client."""
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        return None
    return ProxyMetrics()
