"""Small trees and an event-loop helper shared by the waiting and reconfiguration tests."""

from __future__ import annotations

import asyncio
import random

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.testing import FakeClock


def one_deployment(**limits: object) -> TreeSpec:
    """Group "g" with the single deployment "d" limited by ``limits``."""
    return TreeSpec(
        groups=[Group("g", [Member(deployment="d")])],
        deployments=[Deployment("d", Limits(**limits))],
    )


def shared_pair() -> TreeSpec:
    """Groups "a" and "b" share deployment "d" (one request in flight); "c" has its own."""
    return TreeSpec(
        groups=[
            Group("a", [Member(deployment="d")]),
            Group("b", [Member(deployment="d")]),
            Group("c", [Member(deployment="e")]),
        ],
        deployments=[
            Deployment("d", Limits(max_parallel_requests=1)),
            Deployment("e", Limits(max_parallel_requests=1)),
        ],
    )


def scheduler(spec: TreeSpec, clock: FakeClock | None = None) -> Scheduler:
    return Scheduler(spec, clock=clock or FakeClock(), rng=random.Random(7))


async def turn() -> None:
    """Let every task that can run, run (no time passes)."""
    for _ in range(5):
        await asyncio.sleep(0)
