"""Moving runtime state from one tree to the tree of a new configuration.

Identity is by name: a deployment by its id, a group by its name, a member reference by
(parent group, child, how many references to that child came before it in the parent).
Whatever keeps its identity keeps its state:

- each bucket whose period is unchanged keeps what it holds (exactly, if its rate is
  unchanged); a smaller capacity clamps it, a larger one does **not** fill it: tokens are
  never handed out for free. A rate with a new period starts full, as at start-up;
- leases in flight, cooldowns and the failure history carry over as they are.

Every state object of the old tree is then *retired*, pointing at its successor (or at
nothing when it was removed). Leases hold the objects of the tree they were granted in;
settling one forwards each object to its successor and skips the removed ones, so a lease
that spans a reconfiguration frees its slot and settles its tokens once, on the state that
carries its count. Strategy bookkeeping (round-robin turns) starts afresh.
"""

from __future__ import annotations

from collections.abc import Iterable

from ratetree.core.buckets import Bucket
from ratetree.core.build import Tree
from ratetree.core.gates import Gate, Reference, Wakeups


def forward(items: Iterable[Gate]) -> list[Gate]:
    """The live successors of ``items``, removed ones left out."""
    live: list[Gate] = []
    for item in items:
        current: Gate | None = item
        while current is not None and current.retired:
            current = current.successor
        if current is not None:
            live.append(current)
    return live


def edge_keys(tree: Tree) -> dict[tuple[str, str, str, int], Reference]:
    """Each reference by (parent, kind of child, child name, occurrence): what stays the
    same reference across a reconfiguration."""
    keys: dict[tuple[str, str, str, int], Reference] = {}
    for group in tree.groups.values():
        seen: dict[tuple[str, str], int] = {}
        for edge in group.edges:
            kind, name = type(edge.child).__name__, edge.child.name
            n = seen[kind, name] = seen.get((kind, name), -1) + 1
            keys[group.name, kind, name, n] = edge
    return keys


def _carry_buckets(old: tuple[Bucket, ...], new: tuple[Bucket, ...], now: float) -> None:
    by_period = {b.period: b for b in old}
    for b in new:
        was = by_period.get(b.period)
        if was is None:
            continue  # a new limit starts full
        if was.rate == b.rate:
            b.full_at = was.full_at
            continue
        held = min(was.level(now), b.capacity)
        b.full_at = now + (b.capacity - held) * b.interval


def _carry(old: Gate, new: Gate, now: float) -> None:
    new.in_flight = old.in_flight
    new.cooling_until = old.cooling_until
    _carry_buckets(old.req, new.req, now)
    _carry_buckets(old.tok, new.tok, now)
    old.successor = new


def transfer(old: Tree, new: Tree, now: float, horizon: float, wake: Wakeups) -> None:
    """Carry ``old``'s state into the freshly built ``new`` and retire ``old``; ``wake``
    (new and empty) then holds the new tree's wake-ups and every open flag is true."""
    for d in new.deployments.values():
        was = old.deployments.get(d.id)
        if was is not None:
            _carry(was, d, now)
            d._failures = was._failures  # None until the first failure
    for g in new.groups.values():
        was_group = old.groups.get(g.name)
        if was_group is not None:
            _carry(was_group, g, now)
    old_edges = edge_keys(old)
    for key, e in edge_keys(new).items():
        was_edge = old_edges.get(key)
        if was_edge is not None:
            _carry(was_edge, e, now)
    for gate in (*old.deployments.values(), *old.groups.values(), *old.edges):
        gate.retired = True
    # Refresh bottom-up; each refresh pushes a change on to the parents.
    new_gates: tuple[Gate, ...] = (*new.deployments.values(), *new.edges, *new.groups.values())
    for gate in new_gates:
        wake.refresh(gate, horizon)
    for gate in new_gates:
        for edge in (*gate.busy_watchers, *gate.usage_watchers):
            edge.tier.update(edge)
