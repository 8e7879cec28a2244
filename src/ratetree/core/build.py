"""Turns a validated :class:`TreeSpec` into runtime state: one state per node, one edge per
member reference, tiers per group, and the weights each tier's strategy uses."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ratetree.core.buckets import NEVER
from ratetree.core.gates import DeploymentState, GroupState, Reference, Wakeups
from ratetree.core.graph import check_depth, find_cycle, resolve_aliases
from ratetree.core.specs import Deployment, Group, Limits, Member, TreeSpec
from ratetree.core.strategies.base import tier_class as tier_class_for
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


def wildcard_regex(pattern: str) -> str:
    """The regex LiteLLM's pattern router makes of a model_name holding ``*``
    (``PatternMatchRouter.pattern_to_regex``): each ``*`` matches anything, and a
    request matches when the regex matches at its start (``re.match``)."""
    return re.escape(pattern).replace(r"\*", "(.*)")


def wildcard_patterns(names: Iterable[str]) -> tuple[tuple[re.Pattern[str], str], ...]:
    """The names holding ``*``, compiled, in the order LiteLLM tries them
    (``PatternUtils.calculate_pattern_specificity``): the longer regex first, then the one
    with more special characters; a stable sort keeps config order among equals."""

    def key(name: str) -> tuple[int, int]:
        regex = wildcard_regex(name)
        return len(regex), sum(regex.count(c) for c in "*+?\\^$|()")

    wildcards = sorted((name for name in names if "*" in name), key=key, reverse=True)
    return tuple((re.compile(wildcard_regex(name)), name) for name in wildcards)


class Tree:
    """The runtime graph: every group's state by name, the alias table, and the wildcard
    groups (a model_name holding ``*``) in the order LiteLLM tries them."""

    __slots__ = ("aliases", "deployments", "edges", "groups", "patterns", "spec")

    def __init__(self, spec: TreeSpec) -> None:
        if not isinstance(spec, TreeSpec):
            raise SpecTypeError(f"spec {show(spec)} must be a TreeSpec (got {type(spec).__name__})")
        self.spec = spec
        self.deployments: dict[str, DeploymentState] = {}
        self.groups: dict[str, GroupState] = {}
        self.edges: list[Reference] = []
        self.aliases = resolve_aliases(spec.aliases, {g.name for g in spec.groups})
        _build(self, spec)
        self.patterns: tuple[tuple[re.Pattern[str], GroupState], ...] = tuple(
            (regex, self.groups[name]) for regex, name in wildcard_patterns(self.groups)
        )
        # Every gate starts open, as its buckets start full, except behind a zero rate
        # (LiteLLM's ``rpm: 0``), which never admits a request: close those now. Their
        # moment is NEVER, so no wake-up is filed and the Wakeups can be thrown away.
        wake = Wakeups()
        for gate in (*self.deployments.values(), *self.edges, *self.groups.values()):
            if any(not b.capacity for b in gate.req):
                wake.refresh(gate, -NEVER)

    def lookup(self, name: object) -> GroupState | None:
        """The group a request for ``name`` goes to: a group of that name, else the group
        an alias names, else the first wildcard group whose pattern matches ``name`` (as
        LiteLLM's pattern router picks it); None when there is none (or ``name`` is not
        hashable). ``name`` is typed ``object``: callers pass what a request named, and
        the compiled build would reject a non-string before this could answer None."""
        groups: Mapping[Any, GroupState] = self.groups
        aliases: Mapping[Any, str] = self.aliases
        try:
            found = groups.get(name)
            if found is None:
                alias = aliases.get(name)
                if alias is not None:
                    found = self.groups[alias]
                elif self.patterns and isinstance(name, str):
                    found = next((g for p, g in self.patterns if p.match(name)), None)
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


def _create_states(tree: Tree, spec: TreeSpec) -> None:
    """One state per deployment and per group, not yet connected."""
    for d in spec.deployments:
        tree.deployments[d.id] = DeploymentState(d)
    for g in spec.groups:
        tree.groups[g.name] = GroupState(g)


def _bottom_up(spec: TreeSpec, children: Mapping[str, list[str]]) -> list[str]:
    """Group names, every group after the groups it refers to, so that weights, token
    ceilings and strategy indexes can be built from the members up."""
    order: list[str] = []
    placed: set[str] = set()
    for g in spec.groups:
        stack = [(g.name, iter(children[g.name]))]
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
    return order


Keys = dict[str, float | None]


def _deployment_keys(deployment: Deployment) -> Keys:
    """What a deployment weighs by each weight key (None where it lacks the key)."""
    return {
        "weight": _capped(deployment.weight),
        "rpm": _per_minute(deployment.limits, "rpm"),
        "tpm": _per_minute(deployment.limits, "tpm"),
        "count": 1.0,
    }


def _member_keys(member: Member, target: Keys) -> Keys:
    """A member's weight keys: its target's, overridden by the member's own weight and
    limits."""
    keys = dict(target)
    if member.weight is not None:
        keys["weight"] = _capped(member.weight)
    for kind in ("rpm", "tpm"):
        own = _per_minute(member.limits, kind)
        if own is not None:
            keys[kind] = own
    return keys


def _group_keys(member_keys: list[Keys]) -> Keys:
    """A group weighs the sum of its members, per key (None when no member has it)."""
    return {k: _key_sum(member_keys, k) for k in (*WEIGHT_KEYS, "count")}


def _references(tree: Tree, group: Group, state: GroupState) -> list[Reference]:
    """One reference per member of ``group``, registered with its target and the tree."""
    edges = []
    for m in group.members:
        child: DeploymentState | GroupState
        if m.deployment is not None:
            child = tree.deployments[m.deployment]
        else:
            child = tree.groups[tree.aliases.get(m.target, m.target)]
        edge = Reference(state, child, m.limits, m.order)
        child.parents.append(edge)
        edges.append(edge)
        tree.edges.append(edge)
    state.edges = edges
    for edge in edges:
        state.file_earliest_open(edge)
    return edges


def _build(tree: Tree, spec: TreeSpec) -> None:
    children = _check_spec(spec, tree.aliases)
    _create_states(tree, spec)
    specs = {g.name: g for g in spec.groups}
    deployment_keys = {d.id: _deployment_keys(d) for d in spec.deployments}
    group_keys: dict[str, Keys] = {}
    for name in _bottom_up(spec, children):
        group = specs[name]
        state = tree.groups[name]
        member_keys = [
            _member_keys(
                m,
                deployment_keys[m.deployment]
                if m.deployment is not None
                else group_keys[tree.aliases.get(m.target, m.target)],
            )
            for m in group.members
        ]
        group_keys[name] = _group_keys(member_keys)
        edges = _references(tree, group, state)
        _make_tiers(state, group, edges, member_keys)
        state.max_tokens = _max_tokens(state)


def _make_tiers(
    state: GroupState, group: Group, edges: list[Reference], member_keys: list[Keys]
) -> None:
    """One tier per order, ascending (members without an order last), each of the group's
    strategy, wired into the tree by the strategy and holding its open members."""
    by_order: dict[int | None, list[int]] = {}
    for i, edge in enumerate(edges):
        by_order.setdefault(edge.order, []).append(i)
    orders = sorted(by_order, key=lambda o: (o is None, o or 0))
    tier_class = tier_class_for(group.strategy)
    tier_class.check_args(group.strategy_args, f"group {group.name!r}")
    for o in orders:
        idx = by_order[o]
        # The first weight key any member of the tier has; members without it weigh 0.
        key = next(
            (k for k in WEIGHT_KEYS if any(member_keys[i][k] is not None for i in idx)),
            "count",
        )
        for i in idx:
            edges[i].weight = float(member_keys[i][key] or 0.0)
        tier = tier_class(o, [edges[i] for i in idx])
        tier.attach(state, group.strategy_args)
        for i in idx:
            tier.add(edges[i])
        state.tiers.append(tier)
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
