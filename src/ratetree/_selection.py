"""Choosing a path through the tree, committing it all-or-nothing, and computing how long
a refused request has to wait.

Selection only follows open references (see ``_state``), tier by tier in ascending order.
A member that is open for a minimal request may still be too small for this request's
token count; it is then passed over for this selection only and put back afterwards, so
the next member of the same tier, or the next tier, gets its turn.
"""

from __future__ import annotations

import random

from ._buckets import NEVER
from ._state import DeploymentState, Edge, GroupState, Item, Wakeups


def select(
    root: GroupState, tokens: float, now: float, deadline: float, rng: random.Random
) -> list[Item] | None:
    """The path ``[root, edge, node, ..., deployment]`` that admits the request, or None."""
    if not root.is_open:
        return None
    path: list[Item] = [root]
    return path if _descend(root, tokens, now, deadline, rng, path) else None


def _descend(
    group: GroupState,
    tokens: float,
    now: float,
    deadline: float,
    rng: random.Random,
    path: list[Item],
) -> bool:
    if tokens and group.tok and not group.fits(tokens, deadline):
        return False
    for tier in group.tiers:
        if not tier.open:
            continue
        passed: list[Edge] = []
        edge = tier.pick(rng, now)
        while edge is not None:
            if _enter(edge, tokens, now, deadline, rng, path):
                for e in passed:
                    tier.readd(e)
                tier.charge(edge)
                return True
            tier.remove(edge)
            passed.append(edge)
            edge = tier.pick(rng, now)
        for e in passed:
            tier.readd(e)
    return False


def _enter(
    edge: Edge,
    tokens: float,
    now: float,
    deadline: float,
    rng: random.Random,
    path: list[Item],
) -> bool:
    if tokens and edge.tok and not edge.fits(tokens, deadline):
        return False
    child = edge.child
    path.append(edge)
    path.append(child)
    if isinstance(child, GroupState):
        if _descend(child, tokens, now, deadline, rng, path):
            return True
    elif not tokens or not child.tok or child.fits(tokens, deadline):
        return True
    del path[-2:]
    return False


def commit(path: list[Item], tokens: float, now: float, deadline: float, wake: Wakeups) -> None:
    """Take one request and ``tokens`` from every gate on ``path``."""
    for item in path:
        for b in item.req:
            b.take(1, now)
        if tokens:
            for b in item.tok:
                b.take(tokens, now)
        item.in_flight += 1
    for item in reversed(path):
        if item.limited:
            wake.refresh(item, deadline)


def settle(
    path: list[Item],
    reserved: float,
    actual: float | None,
    now: float,
    deadline: float,
    wake: Wakeups,
) -> None:
    """Free the in-flight slots of ``path`` and, given the actual token count, refund or
    charge the difference from the reservation on every token bucket of the path."""
    diff = 0.0 if actual is None else actual - reserved
    for item in path:
        item.in_flight -= 1
        if diff > 0:
            for b in item.tok:
                b.take(diff, now)
        elif diff < 0:
            for b in item.tok:
                b.give_back(-diff, now)
    for item in reversed(path):
        if item.limited:
            wake.refresh(item, deadline)


def earliest(root: GroupState, tokens: float) -> float:
    """The earliest moment some path from ``root`` admits the request if nothing else
    happens: the minimum over paths of the latest-ready gate on the path. NEVER when every
    path is held by an in-flight cap (or cannot hold ``tokens`` at all)."""
    memo: dict[int, float] = {}

    def own(gate: Item) -> float:
        return NEVER if gate.in_flight >= gate.max_parallel else gate.ready_at(tokens)

    def node_ready(node: GroupState | DeploymentState) -> float:
        key = id(node)
        if key in memo:
            return memo[key]
        mine = own(node)
        if mine != NEVER and isinstance(node, GroupState):
            best = NEVER
            for tier in node.tiers:
                for edge in tier.edges:
                    via = own(edge)
                    if via >= best:
                        continue  # cannot beat the best path found so far
                    below = node_ready(edge.child)
                    best = min(best, max(via, below))
            mine = max(mine, best)
        memo[key] = mine
        return mine

    return node_ready(root)
