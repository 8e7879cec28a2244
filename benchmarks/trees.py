"""Scheduler builders for the benchmarks: the tree shapes and fill levels they time.

Every builder returns a ready :class:`~ratetree.Scheduler` on a :class:`FakeClock` that
never moves, so a bucket drained before timing stays drained for the whole run, and an
"ample" bucket is sized so that no run can empty it (see ``AMPLE``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection
from typing import Any, Literal

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.core.strategies import REGISTRY
from ratetree.testing import FakeClock

Strategy = str  # a name in ratetree's strategy registry
Shape = Literal["tree", "flat"]
Case = Literal["tree", "flat", "tight"]
Fullness = Literal["ample", "exhausted"]

STRATEGIES: tuple[Strategy, ...] = tuple(REGISTRY)  # every registered strategy
SIZES: tuple[int, ...] = (10, 100, 1000, 10000)
# "tight": the three-level tree with TIGHT_LIMIT on its root group.
CASES: tuple[Case, ...] = ("tree", "flat", "tight")
FULLNESSES: tuple[Fullness, ...] = ("ample", "exhausted")

ROOT = "root"
EXHAUSTED_FRACTION = 0.9

# A full run does a few hundred thousand requests per scheduler; with the clock frozen
# nothing refills, so these must outlast that by orders of magnitude (tokens=100 reserved,
# 80 settled: 20 tokens net per request).
AMPLE_RPM = 1_000_000
AMPLE_TPM = 10**9
AMPLE = Limits(rpm=AMPLE_RPM, tpm=AMPLE_TPM)
# One request empties it; the frozen clock keeps it empty.
DRAINABLE = Limits(rpm=1, tpm=10**9)
# On the root group, so on every path: one request in flight fills it (acquire closes the
# root, release reopens it) and every request charges and settles its rpm bucket.
TIGHT_LIMIT = Limits(rpm=10**9, max_parallel_requests=1)


def branching(n: int) -> int:
    """Fan-out k of the three-level tree for n deployments: k mid groups under the root,
    k leaf groups under each, n / k**2 deployments per leaf, so every level is ~n**(1/3)."""
    return max(1, round(math.pow(n, 1 / 3)))


def deployment_ids(n: int) -> list[str]:
    return [f"d{i:05d}" for i in range(n)]


def pick_drained(n: int, seed: int = 0) -> frozenset[str]:
    """The deployments the "exhausted" variant drains: 90%, chosen at random but the same
    on every run, so they are scattered over the leaf groups rather than filling whole
    subtrees (which would let the index prune them a level higher)."""
    ids = deployment_ids(n)
    return frozenset(random.Random(seed).sample(ids, round(EXHAUSTED_FRACTION * n)))


def _deployments(n: int, drained: Collection[str]) -> list[Deployment]:
    # An explicit equal weight: otherwise shuffle and round-robin weigh by rpm, and the
    # drained deployments (rpm=1) would weigh ~0 and hardly ever be tried, which would make
    # "exhausted" look cheaper than a real outage of equal-sized deployments.
    return [
        Deployment(d, limits=DRAINABLE if d in drained else AMPLE, weight=1.0)
        for d in deployment_ids(n)
    ]


def three_level_spec(
    n: int,
    strategy: Strategy,
    *,
    drained: Collection[str] = (),
    root_limits: Limits | None = None,
) -> TreeSpec:
    """root -> k mid groups -> k leaf groups each -> deployments, exactly n in total.

    Deployments are dealt out in contiguous runs whose lengths differ by at most one.
    Every group uses ``strategy``; ``root_limits`` puts a group-level limit on the root.
    """
    k = branching(n)
    leaves = k * k
    if n < leaves:
        raise ValueError(f"{n} deployments cannot fill {leaves} leaf groups")
    deployments = _deployments(n, drained)
    per_leaf, extra = divmod(n, leaves)
    groups: list[Group] = []
    start = 0
    for leaf in range(leaves):
        size = per_leaf + (1 if leaf < extra else 0)
        members = [Member(deployment=d.id) for d in deployments[start : start + size]]
        start += size
        groups.append(Group(f"leaf{leaf}", members, strategy=strategy))
    for mid in range(k):
        members = [Member(group=f"leaf{mid * k + j}") for j in range(k)]
        groups.append(Group(f"mid{mid}", members, strategy=strategy))
    groups.append(
        Group(
            ROOT,
            [Member(group=f"mid{m}") for m in range(k)],
            strategy=strategy,
            limits=root_limits or Limits(),
        )
    )
    assert start == n
    return TreeSpec(groups=groups, deployments=deployments)


def flat_spec(
    n: int,
    strategy: Strategy,
    *,
    drained: Collection[str] = (),
    root_limits: Limits | None = None,
) -> TreeSpec:
    """One group holding all n deployments directly."""
    deployments = _deployments(n, drained)
    root = Group(
        ROOT,
        [Member(deployment=d.id) for d in deployments],
        strategy=strategy,
        limits=root_limits or Limits(),
    )
    return TreeSpec(groups=[root], deployments=deployments)


def drain(scheduler: Scheduler, drained: Collection[str]) -> None:
    """Empty every deployment in ``drained`` (rpm=1 each) through the public API.

    Each is drained through the group that lists it directly, not through the root, so
    the drain does not depend on how a strategy spreads root traffic.
    Requests are released at once, so the few that land on ample deployments cost those
    a sliver of their budget. Raises RuntimeError if a parent stops handing out its
    drained members, which would be a scheduler bug.
    """
    targets = set(drained)
    for group in scheduler.spec.groups:
        left = {m.deployment for m in group.members if m.deployment in targets}
        # Coupon collector: a random strategy needs about n_ample * ln(n_drained) extra
        # draws; 50 per member leaves a wide margin without letting a bug spin forever.
        for _ in range(50 * len(group.members) + 100):
            if not left:
                break
            lease = scheduler.acquire(group.name)
            left.discard(lease.deployment_id)
            lease.release()
        if left:
            raise RuntimeError(f"group {group.name!r}: {len(left)} deployments still open")
    snapshot = scheduler.snapshot()
    still_open = [d for d in drained if snapshot.deployments[d].open]
    if still_open:
        raise RuntimeError(f"drained deployments reopened: {still_open[:5]}")


def build_refusing(n: int, shape: Shape = "tree") -> Scheduler:
    """Every deployment drained: each request to the root is refused with a retry_after."""
    ids = frozenset(deployment_ids(n))
    make = three_level_spec if shape == "tree" else flat_spec
    scheduler = Scheduler(make(n, "shuffle", drained=ids), clock=FakeClock(1000.0))
    drain(scheduler, ids)
    return scheduler


def build(
    n: int,
    strategy: Strategy,
    fullness: Fullness = "ample",
    *,
    shape: Shape = "tree",
    tight_limit: bool = False,
    seed: int = 0,
) -> Scheduler:
    """A scheduler for one benchmark case, drained already if ``fullness`` says so."""
    drained = pick_drained(n, seed) if fullness == "exhausted" else frozenset()
    make = three_level_spec if shape == "tree" else flat_spec
    spec = make(n, strategy, drained=drained, root_limits=TIGHT_LIMIT if tight_limit else None)
    scheduler = Scheduler(spec, clock=FakeClock(1000.0), rng=random.Random(seed))
    if drained:
        drain(scheduler, drained)
    return scheduler


def litellm_model_list(n: int) -> list[dict[str, Any]]:
    """The same n ample deployments as one flat LiteLLM model group named ``ROOT``, for
    ``litellm.Router(model_list=...)``: same ids, same rpm/tpm, a fake key (nothing is
    ever sent)."""
    return [
        {
            "model_name": ROOT,
            "litellm_params": {
                "model": "openai/gpt-4o-mini",
                "api_key": "sk-fake",
                "rpm": AMPLE_RPM,
                "tpm": AMPLE_TPM,
            },
            "model_info": {"id": d},
        }
        for d in deployment_ids(n)
    ]
