"""Choosing a path through the tree, committing it all-or-nothing (and taking a commit
back), settling it, and computing how long a refused request has to wait.

Selection only follows open references (see ``_state``), tier by tier in ascending order.
A member that is open for a minimal request may still be too small for this request's
token count; it is then passed over for this selection only and put back afterwards, so
the next member of the same tier, or the next tier, gets its turn.
"""

from __future__ import annotations

import random
from collections.abc import Collection

from ratetree.core.buckets import NEVER
from ratetree.core.gates import DeploymentState, Gate, GroupState, Reference, Wakeups
from ratetree.core.strategies.base import Tier as BaseTier


def select(
    root: GroupState,
    tokens: float,
    now: float,
    horizon: float,
    rng: random.Random,
    exclude: Collection[str] = frozenset(),
) -> list[Gate] | None:
    """The gates a request would pass, ``[root, (edge,) node, ..., deployment]``, or None.

    Only references that carry limits are listed: the others hold no state. The common
    case, where the strategy's first pick at every level takes the request, runs as a flat
    loop; anything else goes to the full search, which passes members over and backtracks.
    Deployments whose id is in ``exclude`` are passed over as if closed (a caller's retry
    avoiding the deployment that just failed for it); that always takes the full search.
    """
    if not root.is_open:
        return None
    if exclude:
        return _search(root, tokens, now, horizon, rng, exclude)
    path: list[Gate] = [root]
    node: GroupState = root
    charged: list[Reference] | None = None  # made by the first member whose tier charges
    while True:
        if tokens and node.tok and not node.fits(tokens, horizon):
            return None if node is root else _search(root, tokens, now, horizon, rng)
        # Typed as the base class every strategy derives from, not the Tier protocol: the
        # compiled build then calls the strategy's methods directly (here and below).
        tier: BaseTier = node.tiers[0]  # type: ignore[assignment]
        if not tier.open:  # the first tier is usually open: skip the loop then
            for tier in node.tiers:  # type: ignore[assignment]
                if tier.open:
                    break
        edge = tier.pick(rng, now)
        if edge is None:  # pragma: no cover - an open group always has an open member
            return _search(root, tokens, now, horizon, rng)
        if edge.limited:
            if tokens and edge.tok and not edge.fits(tokens, horizon):
                return _search(root, tokens, now, horizon, rng)
            path.append(edge)
        if tier.charges:
            if charged is None:
                charged = []
            charged.append(edge)
        child = edge.child
        path.append(child)
        if isinstance(child, GroupState):
            node = child
            continue
        if tokens and child.tok and not child.fits(tokens, horizon):
            return _search(root, tokens, now, horizon, rng)
        if charged is not None:
            for edge in charged:
                charging: BaseTier = edge.tier  # type: ignore[assignment]
                charging.charge(edge)
        return path


def _search(
    root: GroupState,
    tokens: float,
    now: float,
    horizon: float,
    rng: random.Random,
    exclude: Collection[str] = frozenset(),
) -> list[Gate] | None:
    path: list[Gate] = [root]
    return path if _descend(root, tokens, now, horizon, rng, path, exclude, set()) else None


def _descend(
    group: GroupState,
    tokens: float,
    now: float,
    horizon: float,
    rng: random.Random,
    path: list[Gate],
    exclude: Collection[str],
    failed: set[int],
) -> bool:
    """Whether some path below ``group`` admits the request; appends it to ``path``.

    ``failed`` holds the ids of groups already found to admit nothing for this request:
    whether a group can admit depends only on what lies below it, so a group shared by
    many parents (stacked diamonds have 2**depth paths) is searched once per request.
    """
    if tokens and group.tok and not group.fits(tokens, horizon):
        return False
    for tier in group.tiers:
        if not tier.open:
            continue
        passed: list[Reference] = []
        edge = tier.pick(rng, now)
        while edge is not None:
            if _enter(edge, tokens, now, horizon, rng, path, exclude, failed):
                break
            tier.remove(edge)
            passed.append(edge)
            edge = tier.pick(rng, now)
        for e in passed:
            tier.readd(e)
        if edge is not None:
            tier.charge(edge)
            return True
    return False


def _enter(
    edge: Reference,
    tokens: float,
    now: float,
    horizon: float,
    rng: random.Random,
    path: list[Gate],
    exclude: Collection[str],
    failed: set[int],
) -> bool:
    if tokens and edge.tok and not edge.fits(tokens, horizon):
        return False
    child = edge.child
    if exclude and isinstance(child, DeploymentState) and child.name in exclude:
        return False
    if id(child) in failed:
        return False
    mark = len(path)
    if edge.limited:
        path.append(edge)
    path.append(child)
    if isinstance(child, GroupState):
        if _descend(child, tokens, now, horizon, rng, path, exclude, failed):
            return True
        failed.add(id(child))
    elif not tokens or not child.tok or child.fits(tokens, horizon):
        return True
    del path[mark:]
    return False


def commit(path: list[Gate], tokens: float, now: float, horizon: float, wake: Wakeups) -> None:
    """Take one request and ``tokens`` from every gate on ``path``."""
    for item in path:
        item.in_flight += 1
        if item.limited:
            still_open = item.in_flight < item.max_parallel
            # Bucket.take and ready_at written out: this runs for every limited gate of
            # every request, and the method calls cost about 4% of an acquire + release
            # (measured at 1,000 deployments).
            for b in item.req:
                full_at = b.full_at
                b.full_at = full_at = (full_at if full_at > now else now) + b.interval
                if full_at + b.interval - b.period > horizon:
                    still_open = False
            if tokens:
                for b in item.tok:
                    full_at = b.full_at
                    b.full_at = full_at = (full_at if full_at > now else now) + tokens * b.interval
                    if full_at - b.period > horizon:
                        still_open = False
            if not still_open:
                wake.refresh(item, horizon)
            if item.usage_watchers:
                for edge in item.usage_watchers:
                    edge.tier.update(edge)
        if item.busy_watchers:  # usually empty: test before making an iterator
            for edge in item.busy_watchers:
                watching: BaseTier = edge.tier  # type: ignore[assignment]
                watching.update(edge)


def settle(
    path: list[Gate],
    reserved: float,
    actual: float | None,
    now: float,
    horizon: float,
    wake: Wakeups,
) -> None:
    """Free the in-flight slots of ``path`` and, given the actual token count, refund or
    charge the difference from the reservation on every token bucket of the path."""
    diff = 0.0 if actual is None else actual - reserved
    for item in path:
        item.in_flight -= 1
        if item.limited:
            # Bucket.take and give_back written out, as in commit.
            if diff > 0:
                for b in item.tok:
                    full_at = b.full_at
                    b.full_at = (full_at if full_at > now else now) + diff * b.interval
            elif diff < 0:
                for b in item.tok:
                    full_at = b.full_at + diff * b.interval
                    b.full_at = full_at if full_at > now else now
            # Fewer leases and refunds can only open a gate; an extra charge can close it.
            if not item.is_open or (diff > 0 and item.tok):
                wake.refresh(item, horizon)
            if diff and item.tok and item.usage_watchers:
                for edge in item.usage_watchers:
                    edge.tier.update(edge)
        if item.busy_watchers:  # usually empty: test before making an iterator
            for edge in item.busy_watchers:
                watching: BaseTier = edge.tier  # type: ignore[assignment]
                watching.update(edge)


def take_back(path: list[Gate], tokens: float, now: float, horizon: float, wake: Wakeups) -> None:
    """The inverse of ``commit``: the request, its ``tokens`` and its slot go back to every
    gate of ``path``, for a commit nobody will use (a waiter that left, a commit a shared
    state refused)."""
    for item in path:
        if item.limited and item.req:
            for b in item.req:
                b.give_back(1, now)
            for edge in item.usage_watchers:
                edge.tier.update(edge)
    settle(path, tokens, 0.0, now, horizon, wake)


def earliest(root: GroupState, tokens: float) -> float:
    """The earliest moment some path from ``root`` admits the request if nothing else
    happens: the minimum over paths of the latest-ready gate on the path. NEVER when every
    path is held by an in-flight cap (or cannot hold ``tokens`` at all).

    For a minimal request that is ``root.earliest_open``, kept current as gates change. A
    request with tokens needs more than a minimal one, so ``earliest_open`` bounds it from
    below: members are tried in ascending ``earliest_open`` and the search stops at the
    first that cannot beat the best path found so far.
    """
    if not tokens and not root.is_open:
        return root.earliest_open
    memo: dict[int, float] = {}

    def own(gate: Gate) -> float:
        return NEVER if gate.in_flight >= gate.max_parallel else gate.ready_at(tokens)

    def node_ready(node: GroupState | DeploymentState) -> float:
        key = id(node)
        if key in memo:
            return memo[key]
        mine = own(node)
        if mine != NEVER and isinstance(node, GroupState):
            best = NEVER
            for edge in node.members_by_earliest_open():
                if edge.earliest_open >= best or best <= mine:
                    break  # nothing further can beat the best path found so far
                via = own(edge)
                if via < best:
                    best = min(best, max(via, node_ready(edge.child)))
            mine = max(mine, best)
        memo[key] = mine
        return mine

    return node_ready(root)
