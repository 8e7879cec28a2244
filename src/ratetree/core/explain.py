"""Frozen pictures of the runtime state: ``explain`` (why a request would go where it
would, queued waiters included) and ``snapshot`` (how full everything is). Neither
consumes anything."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Literal

import attrs

from ratetree.core.buckets import NEVER, Bucket
from ratetree.core.gates import DeploymentState, Gate, GroupState, Reference
from ratetree.core.specs import Rate

if TYPE_CHECKING:
    from ratetree.core.build import Tree

Kind = Literal["group", "deployment", "reference"]


@attrs.frozen
class BucketSnapshot:
    """One bucket: ``remaining`` units of ``rate.amount`` (negative while in debt)."""

    kind: Literal["rpm", "tpm"]
    rate: Rate
    remaining: float


@attrs.frozen
class GateSnapshot:
    """A node or reference at one moment. ``cooling_for`` is seconds of cooldown left."""

    name: str
    kind: Kind
    buckets: tuple[BucketSnapshot, ...]
    in_flight: int
    max_parallel_requests: int | None
    cooling_for: float
    open: bool


@attrs.frozen
class Snapshot:
    """Every gate of a scheduler at clock reading ``time``: each group and deployment, and
    each reference that carries limits (the others hold no state of their own)."""

    time: float
    groups: Mapping[str, GateSnapshot]
    deployments: Mapping[str, GateSnapshot]
    references: tuple[GateSnapshot, ...]


def _gate_snapshot(gate: Gate, name: str, kind: Kind, now: float) -> GateSnapshot:
    buckets = tuple(BucketSnapshot("rpm", b.rate, b.level(now)) for b in gate.req) + tuple(
        BucketSnapshot("tpm", b.rate, b.level(now)) for b in gate.tok
    )
    cap = gate.max_parallel
    return GateSnapshot(
        name=name,
        kind=kind,
        buckets=buckets,
        in_flight=gate.in_flight,
        max_parallel_requests=None if cap == NEVER else int(cap),
        cooling_for=max(0.0, gate.cooling_until - now),
        open=gate.is_open,
    )


def take_snapshot(tree: Tree, now: float) -> Snapshot:
    return Snapshot(
        time=now,
        groups=MappingProxyType(
            {n: _gate_snapshot(g, n, "group", now) for n, g in tree.groups.items() if n == g.name}
        ),
        deployments=MappingProxyType(
            {i: _gate_snapshot(d, i, "deployment", now) for i, d in tree.deployments.items()}
        ),
        references=tuple(
            _gate_snapshot(e, e.name, "reference", now) for e in tree.edges if e.limited
        ),
    )


@attrs.frozen
class WaiterSnapshot:
    """A request queued in ``acquire_async`` or ``acquire_wait`` at one moment: the group
    it asked for, its ``priority`` and ``tokens``, and the seconds it has ``waited``."""

    group: str
    priority: float
    tokens: float
    waited: float

    def __str__(self) -> str:
        return (
            f"group {self.group!r}, priority {self.priority:g}, {self.tokens:g} tokens, "
            f"waiting for {self.waited:.6g} s"
        )


# Hashes are cached: a group shared by many parents appears as one shared object under
# each of them, and an uncached hash would walk it once per path.
@attrs.frozen(cache_hash=True)
class Explanation:
    """One node as a request would meet it. ``admits`` says whether some path through it
    admits the request now; ``reasons`` say what holds its own gate (and the reference
    leading to it) back; ``role`` is where selection stands with it:
    ``"candidate"`` (in the tier selection would use), ``"blocked"``, or
    ``"not reached"`` (a later tier while an earlier one admits).

    On the requested group, ``waiter`` is the first queued waiter (in the order of
    service) on a group sharing a deployment with it, and ``waiters_ahead`` how many such
    waiters are queued: while there are any, ``acquire`` leaves them the capacity, so the
    request does not admit and its members are not reached.

    A group reached along several paths has one ``children`` tuple shared by every place
    it appears, so an explanation is as large as the tree's nodes and references, not its
    paths; ``str()`` lists a shared group's members once and refers back to them after.
    """

    name: str
    kind: Literal["group", "deployment"]
    admits: bool
    role: Literal["requested", "candidate", "blocked", "not reached"]
    reasons: tuple[str, ...]
    order: int | None = None
    weight: float | None = None
    strategy: str | None = None
    label: str | None = None
    children: tuple[Explanation, ...] = ()
    waiter: WaiterSnapshot | None = None
    waiters_ahead: int = 0

    @property
    def candidates(self) -> tuple[str, ...]:
        """Deployment ids that :meth:`Scheduler.acquire` could choose now."""
        if not self.admits:
            return ()
        if self.kind == "deployment":
            return (self.name,)
        out: dict[str, None] = {}
        seen: set[int] = set()
        stack = [iter(self.children)]
        while stack:  # depth first, each shared explanation once
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
            elif child.role == "candidate" and child.admits and id(child) not in seen:
                seen.add(id(child))
                if child.kind == "deployment":
                    out[child.name] = None
                else:
                    stack.append(iter(child.children))
        return tuple(out)

    def __str__(self) -> str:
        lines: list[str] = []
        shown: set[int] = set()
        stack: list[tuple[Explanation, int]] = [(self, 0)]
        while stack:
            node, depth = stack.pop()
            line = "  " * depth + node._line()
            if node.children and id(node.children) in shown:
                lines.append(line + " [members as shown above]")
                continue
            lines.append(line)
            shown.add(id(node.children))
            stack.extend((child, depth + 1) for child in reversed(node.children))
        return "\n".join(lines)

    def _line(self) -> str:
        bits = [self.name if self.label is None else f"{self.name} ({self.label})"]
        if self.strategy:
            bits.append(f"[{self.strategy}]")
        if self.order is not None:
            bits.append(f"order={self.order}")
        if self.weight is not None:
            bits.append(f"weight={self.weight:g}")
        bits.append(f"- {self.role}")
        if self.reasons:
            bits.append(f"({'; '.join(self.reasons)})")
        return " ".join(bits)


def _reasons(gate: Gate, tokens: float, now: float, horizon: float, where: str) -> list[str]:
    out: list[str] = []
    if gate.in_flight >= gate.max_parallel:
        out.append(f"{where}concurrency full ({gate.in_flight}/{int(gate.max_parallel)})")
    if gate.cooling_until > horizon:
        out.append(f"{where}cooling down for {gate.cooling_until - now:.6g} s")
    for kind, buckets, units in (("rpm", gate.req, 1.0), ("tpm", gate.tok, tokens)):
        for b in buckets:
            out.extend(_bucket_reason(b, kind, units, now, horizon, where))
    return out


def _bucket_reason(
    b: Bucket, kind: str, units: float, now: float, horizon: float, where: str
) -> list[str]:
    ready = b.ready_at(units)
    if ready == NEVER:
        return [f"{where}{kind} {b.rate} can never hold {units:g}"]
    if ready > horizon:
        return [f"{where}{kind} {b.rate} short for {ready - now:.6g} s"]
    return []


def explain_group(
    root: GroupState,
    name: str,
    tokens: float,
    now: float,
    horizon: float,
    queued: tuple[WaiterSnapshot, int] | None = None,
) -> Explanation:
    """``queued``: the first waiter holding capacity the request needs, and how many do
    (``WaitQueue.ahead``)."""
    memo: dict[int, bool] = {}

    def admits(node: GroupState | DeploymentState) -> bool:
        key = id(node)
        if key not in memo:
            ok = not _reasons(node, tokens, now, horizon, "")
            if ok and isinstance(node, GroupState):
                ok = any(
                    not _reasons(e, tokens, now, horizon, "") and admits(e.child)
                    for tier in node.tiers
                    for e in tier.edges
                )
            memo[key] = ok
        return memo[key]

    # The members of a group as explained under it, by (group, whether selection stops
    # there): shared by every place the group appears, so each is built once.
    members: dict[tuple[int, bool], tuple[Explanation, ...]] = {}

    def members_of(node: GroupState, stopped: bool) -> tuple[Explanation, ...]:
        key = (id(node), stopped)
        if key not in members:
            children: list[Explanation] = []
            for tier in node.tiers:
                child_role = "not reached" if stopped else "candidate"
                for e in tier.edges:
                    children.append(visit(e.child, e, child_role))
                stopped = stopped or any(
                    not _reasons(e, tokens, now, horizon, "") and admits(e.child)
                    for e in tier.edges
                )
            members[key] = tuple(children)
        return members[key]

    def visit(node: GroupState | DeploymentState, edge: Reference | None, role: str) -> Explanation:
        reasons = [] if edge is None else _reasons(edge, tokens, now, horizon, "reference: ")
        reasons += _reasons(node, tokens, now, horizon, "")
        if queued is not None and edge is None:  # the requested group
            waiter, count = queued
            more = f"; {count - 1} more queued" if count > 1 else ""
            reasons.append(f"held for a queued waiter ({waiter}{more})")
        ok = not reasons and admits(node)
        if edge is not None and role == "candidate" and not ok:
            role = "blocked"
        children: tuple[Explanation, ...] = ()
        strategy = None
        if isinstance(node, GroupState):
            strategy = node.spec.strategy
            # Selection does not reach the members of a group it does not reach, or whose
            # own gate (or reference) holds the request back, nor the tiers after the first
            # that admits.
            stopped = role == "not reached" or bool(reasons)
            if not reasons and not ok:
                reasons.append("no member can admit")
            children = members_of(node, stopped)
        return Explanation(
            name=node.name,
            kind="group" if isinstance(node, GroupState) else "deployment",
            admits=ok,
            role=role,  # type: ignore[arg-type]
            reasons=tuple(reasons),
            order=None if edge is None else edge.order,
            weight=None if edge is None else edge.weight,
            strategy=strategy,
            label=node.spec.label if isinstance(node, DeploymentState) else None,
            children=children,
        )

    result = visit(root, None, "requested")
    if queued is not None:
        result = attrs.evolve(result, waiter=queued[0], waiters_ahead=queued[1])
    return attrs.evolve(result, name=name) if name != root.name else result
