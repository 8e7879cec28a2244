"""Turns a validated :class:`TreeSpec` into runtime state: one state per node, one edge per
member reference, tiers per group, and the weights each tier's strategy uses."""

from __future__ import annotations

from collections.abc import Mapping

from ratetree.core.buckets import NEVER
from ratetree.core.gates import DeploymentState, Gate, GroupState, Reference, Wakeups
from ratetree.core.graph import check_depth, find_cycle, resolve_aliases
from ratetree.core.specs import Group, Limits, Member, TreeSpec
from ratetree.core.strategies import TIER_CLASSES
from ratetree.core.strategies.base import Tier
from ratetree.core.strategies.least_busy import LeastBusyTier
from ratetree.core.strategies.usage_based import UsageBasedTier
from ratetree.core.validate import show
from ratetree.errors import ConfigError, SpecTypeError

# Weight keys in the order LiteLLM's simple-shuffle looks for them; "count" (one per
# deployment) stands for "uniform" so that a group member weighs as much as it holds.
WEIGHT_KEYS = ("weight", "rpm", "tpm")
#: Weights and per-minute rates are capped here before strategies add them up, so no sum
#: overflows to infinity (two weights of 1e308 did); far above any real limit.
KEY_MAX = 1e100


def _capped(value: float | None) -> float | None:
    return None if value is None else min(value, KEY_MAX)


def _key_sum(member_keys: list[dict[str, float | None]], key: str) -> float | None:
    """The members' ``key`` added up (None if no member has it), capped at KEY_MAX."""
    values = [min(v, KEY_MAX) for mk in member_keys if (v := mk[key]) is not None]
    return min(sum(values), KEY_MAX) if values else None


class Tree:
    """The runtime graph. ``groups`` also maps every alias to its group's state."""

    __slots__ = ("aliases", "deployments", "edges", "groups", "spec")

    def __init__(self, spec: TreeSpec) -> None:
        if not isinstance(spec, TreeSpec):
            raise SpecTypeError(f"spec {show(spec)} must be a TreeSpec (got {type(spec).__name__})")
        self.spec = spec
        self.deployments: dict[str, DeploymentState] = {}
        self.groups: dict[str, GroupState] = {}
        self.edges: list[Reference] = []
        self.aliases = resolve_aliases(spec.aliases, {g.name for g in spec.groups})
        _build(self, spec)
        # Every gate starts open, as its buckets start full, except behind a zero rate
        # (LiteLLM's ``rpm: 0``), which never admits a request: close those now. Their
        # moment is NEVER, so no wake-up is filed and the Wakeups can be thrown away.
        wake = Wakeups()
        for gate in (*self.deployments.values(), *self.edges, *self.groups.values()):
            if any(not b.capacity for b in gate.req):
                wake.refresh(gate, -NEVER)

    def lookup(self, name: str) -> GroupState | None:
        """The group a request for ``name`` goes to: a group of that name, else the group
        an alias names; None when there is none (or ``name`` is not hashable)."""
        try:
            found = self.groups.get(name)
            if found is None:
                alias = self.aliases.get(name)
                if alias is not None:
                    found = self.groups[alias]
        except TypeError:
            return None
        return found


def _fail_unknown(group: Group, index: int, member: Member) -> ConfigError:
    kind = "deployment" if member.deployment is not None else "group"
    return ConfigError(
        f"group {show(group.name)} member {index} refers to unknown {kind} {show(member.target)}"
    )


def _per_minute(limits: Limits, kind: str) -> float | None:
    rates = limits.rpm if kind == "rpm" else limits.tpm
    return _capped(min(r.per_minute for r in rates)) if rates else None


def _check_spec(spec: TreeSpec, aliases: Mapping[str, str]) -> dict[str, list[str]]:
    seen_deployments: set[str] = set()
    for d in spec.deployments:
        if d.id in seen_deployments:
            raise ConfigError(f"deployment id {show(d.id)} is defined twice")
        seen_deployments.add(d.id)
    group_names: set[str] = set()
    for g in spec.groups:
        if g.name in group_names:
            raise ConfigError(f"group {show(g.name)} is defined twice")
        group_names.add(g.name)
    children: dict[str, list[str]] = {}
    for g in spec.groups:
        kids = children.setdefault(g.name, [])
        for i, m in enumerate(g.members):
            if m.deployment is not None:
                if m.deployment not in seen_deployments:
                    raise _fail_unknown(g, i, m)
            else:
                target = aliases.get(m.target, m.target)
                if target not in group_names:
                    raise _fail_unknown(g, i, m)
                kids.append(target)
    cycle = find_cycle(children)
    if cycle:
        raise ConfigError(f"group cycle: {' -> '.join(cycle)}")
    check_depth(children)
    return children


class _Shape:
    """What a subtree's limits look like, to decide whether usage-based can use a heap:
    the set of bucket periods in it, and whether every gate is free of in-flight caps and
    every group in it is usage-based."""

    __slots__ = ("periods", "rankable")

    def __init__(self, periods: set[float], rankable: bool) -> None:
        self.periods = periods
        self.rankable = rankable

    @classmethod
    def of(cls, gate: Gate, *, usage_based: bool = True) -> _Shape:
        periods = {b.period for b in (*gate.req, *gate.tok)}
        return cls(periods, usage_based and gate.max_parallel == NEVER)

    def join(self, *others: _Shape) -> _Shape:
        periods = self.periods.union(*(o.periods for o in others))
        return _Shape(periods, self.rankable and all(o.rankable for o in others))


def _build(tree: Tree, spec: TreeSpec) -> None:
    children = _check_spec(spec, tree.aliases)
    for d in spec.deployments:
        tree.deployments[d.id] = DeploymentState(d)
    for g in spec.groups:
        tree.groups[g.name] = GroupState(g)

    # Children before parents, so weights and token ceilings can be summed bottom-up.
    order: list[str] = []
    placed: set[str] = set()

    def place(name: str) -> None:
        stack = [(name, iter(children[name]))]
        while stack:
            current, it = stack[-1]
            child = next(it, None)
            if child is None:
                stack.pop()
                if current not in placed:
                    placed.add(current)
                    order.append(current)
            elif child not in placed:
                stack.append((child, iter(children[child])))

    for g in spec.groups:
        place(g.name)

    keys: dict[str, dict[str, float | None]] = {}
    for d in spec.deployments:
        keys[d.id] = {
            "weight": _capped(d.weight),
            "rpm": _per_minute(d.limits, "rpm"),
            "tpm": _per_minute(d.limits, "tpm"),
            "count": 1.0,
        }
    shapes = {id(d): _Shape.of(d) for d in tree.deployments.values()}
    specs = {g.name: g for g in spec.groups}
    group_keys: dict[str, dict[str, float | None]] = {}
    for name in order:
        group = specs[name]
        state = tree.groups[name]
        member_keys = []
        edges = []
        for m in group.members:
            child: DeploymentState | GroupState
            if m.deployment is not None:
                child = tree.deployments[m.deployment]
                base = keys[m.deployment]
            else:
                target = tree.aliases.get(m.target, m.target)
                child = tree.groups[target]
                base = group_keys[target]
            mk = dict(base)
            if m.weight is not None:
                mk["weight"] = _capped(m.weight)
            for kind in ("rpm", "tpm"):
                own = _per_minute(m.limits, kind)
                if own is not None:
                    mk[kind] = own
            member_keys.append(mk)
            edge = Reference(state, child, m.limits, m.order)
            child.parents.append(edge)
            edges.append(edge)
            tree.edges.append(edge)
        group_keys[name] = {k: _key_sum(member_keys, k) for k in (*WEIGHT_KEYS, "count")}
        state.edges = edges
        for edge in edges:
            state.file_earliest_open(edge)
            shapes[id(edge)] = _Shape.of(edge).join(shapes[id(edge.child)])
        shapes[id(state)] = _Shape.of(state, usage_based=group.strategy == "usage-based").join(
            *(shapes[id(e)] for e in edges)
        )
        _make_tiers(state, group, edges, member_keys, shapes)
        state.max_tokens = _max_tokens(state)


def _make_tiers(
    state: GroupState,
    group: Group,
    edges: list[Reference],
    member_keys: list[dict[str, float | None]],
    shapes: dict[int, _Shape],
) -> None:
    by_order: dict[int | None, list[int]] = {}
    for i, edge in enumerate(edges):
        by_order.setdefault(edge.order, []).append(i)
    # Ascending order; members without an order rank after every ordered one.
    orders = sorted(by_order, key=lambda o: (o is None, o or 0))
    tier_class = TIER_CLASSES[group.strategy]
    for o in orders:
        idx = by_order[o]
        key = next(
            (k for k in WEIGHT_KEYS if any(member_keys[i][k] is not None for i in idx)),
            "count",
        )
        for i in idx:
            edges[i].weight = float(member_keys[i][key] or 0.0)
        tier: Tier = tier_class(o, [edges[i] for i in idx])
        if isinstance(tier, UsageBasedTier):
            tier.owner = state
            tier.indexed = all(shapes[id(edges[i])].rankable for i in idx) and (
                len(set().union(*(shapes[id(edges[i])].periods for i in idx))) <= 1
            )
        for i in idx:
            tier.add(edges[i])
        state.tiers.append(tier)
        for i in idx:
            edge = edges[i]
            if isinstance(tier, LeastBusyTier):
                edge.child.busy_watchers += (edge,)
            elif isinstance(tier, UsageBasedTier):
                edge.child.usage_watchers += (edge,)
                if edge.limited:  # only a limited reference has buckets of its own to change
                    edge.usage_watchers += (edge,)
    state.open_edges = len(edges)


def _max_tokens(state: GroupState) -> float:
    """The largest token count some path from this group could ever admit."""
    best = 0.0
    for tier in state.tiers:
        for edge in tier.edges:
            child = edge.child
            below = child.max_tokens if isinstance(child, GroupState) else _cap(child)
            best = max(best, min(_cap(edge), below))
    return min(best, _cap(state))


def _cap(gate: DeploymentState | GroupState | Reference) -> float:
    return min((b.capacity for b in gate.tok), default=NEVER)
