"""Stacked diamonds: the shape where one sub-group is reachable along exponentially many
paths. Group ``a0`` has members ``b0`` and ``c0``, both of which reference ``a1``, and so
on ``depth`` times down to ``a{depth}``, which holds one deployment. There are
``2**depth`` paths from the top to the deployment, and ``3 * depth + 1`` groups.

The deployment's token bucket is drained to ``LEFT`` tokens of ``CAPACITY`` on a frozen
clock, so a request of ``REFUSED`` tokens sees every gate open for a minimal request yet
fits nowhere: selection has to rule out every path before refusing, which is what a
search without memory does once per path.
"""

from __future__ import annotations

import random

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.testing import FakeClock

CAPACITY = 10**9
LEFT = 500
REFUSED = 600  # fits the bucket's capacity, not what is left in it
TOP = "a0"


def diamond_spec(depth: int) -> TreeSpec:
    groups = []
    for i in range(depth):
        below = [Member(group=f"a{i + 1}")]
        groups += [
            Group(f"a{i}", [Member(group=f"b{i}"), Member(group=f"c{i}")]),
            Group(f"b{i}", below),
            Group(f"c{i}", below),
        ]
    groups.append(Group(f"a{depth}", [Member(deployment="d")]))
    deployment = Deployment("d", Limits(rpm=10**9, tpm=CAPACITY))
    return TreeSpec(groups, [deployment])


def build_diamonds(depth: int, *, exhausted: bool) -> Scheduler:
    """Stacked diamonds on a frozen clock; ``exhausted`` leaves LEFT tokens in the bucket."""
    scheduler = Scheduler(diamond_spec(depth), clock=FakeClock(1000.0), rng=random.Random(0))
    if exhausted:
        scheduler.acquire(TOP, tokens=CAPACITY - LEFT).release()
    return scheduler
