"""Shared hypothesis strategies: random valid trees of groups and deployments.

Every tree is drawn as a plain :class:`TreeModel` first, which records the limits exactly
as this module meant them (amount and period of every rate, in the order written), and is
turned into a :class:`ratetree.TreeSpec` by :meth:`TreeModel.to_spec`. The oracle in
``oracle.py`` reads the model, never the parsed spec, so a parsing mistake in ratetree
shows up as a disagreement instead of being copied into the reference.

Shape of the trees:

- groups ``g0 .. gN`` form a DAG: ``gi`` may reference ``gj`` only for ``j > i``, so a
  sub-group (and any deployment) can be shared by several parents;
- a group never references the same target twice, so a lease's ``path`` (node names)
  names one member reference per step unambiguously;
- aliases ``a0 ..`` name groups (sometimes through another alias); members may reference a
  group by an alias, and requests may name one;
- orders are ``None`` or small integers, written as an int, a float or a string;
- limits sit on deployments, groups and member references: ``rpm``/``tpm`` as a number
  (per minute) or a rate string such as ``"5/second;100/minute"``, and
  ``max_parallel_requests``. Capacities are small so that limits bind in short runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from ratetree import Deployment, Group, Limits, Member, TreeSpec
from ratetree.core.specs import STRATEGIES, Strategy

# Every registered strategy, so a new one is checked against the oracle at once.
STRATEGY_NAMES = STRATEGIES

# (unit word for the ``limits`` rate syntax, seconds)
UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


@dataclass(frozen=True)
class RateModel:
    """``amount`` units per ``period`` seconds."""

    amount: float
    period: float


@dataclass(frozen=True)
class LimitsModel:
    """Limits as intended, plus the raw values handed to :class:`ratetree.Limits`."""

    rpm: tuple[RateModel, ...] = ()
    tpm: tuple[RateModel, ...] = ()
    max_parallel: int | None = None
    rpm_raw: Any = None
    tpm_raw: Any = None

    def to_limits(self) -> Limits:
        return Limits(rpm=self.rpm_raw, tpm=self.tpm_raw, max_parallel_requests=self.max_parallel)

    def __bool__(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_parallel is not None)


NO_LIMITS = LimitsModel()


@dataclass(frozen=True)
class MemberModel:
    target: str  # as written: a deployment id, a group name or an alias of a group
    kind: str  # "group" or "deployment"
    order: int | None
    order_raw: Any
    weight: float | None
    limits: LimitsModel

    def to_member(self) -> Member:
        kwargs: dict[str, Any] = {self.kind: self.target}
        return Member(
            **kwargs, order=self.order_raw, weight=self.weight, limits=self.limits.to_limits()
        )


@dataclass(frozen=True)
class GroupModel:
    name: str
    members: tuple[MemberModel, ...]
    strategy: Strategy
    limits: LimitsModel


@dataclass(frozen=True)
class DeploymentModel:
    id: str
    limits: LimitsModel
    weight: float | None
    cost: float | None = None


@dataclass(frozen=True)
class TreeModel:
    groups: tuple[GroupModel, ...]
    deployments: tuple[DeploymentModel, ...]
    aliases: tuple[tuple[str, str], ...] = ()  # (alias, group or earlier alias)
    _spec: list[TreeSpec] = field(default_factory=list, compare=False, repr=False)

    def to_spec(self) -> TreeSpec:
        if not self._spec:
            self._spec.append(
                TreeSpec(
                    groups=[
                        Group(
                            g.name,
                            members=[m.to_member() for m in g.members],
                            strategy=g.strategy,
                            limits=g.limits.to_limits(),
                        )
                        for g in self.groups
                    ],
                    deployments=[
                        Deployment(d.id, limits=d.limits.to_limits(), weight=d.weight, cost=d.cost)
                        for d in self.deployments
                    ],
                    aliases=dict(self.aliases),
                )
            )
        return self._spec[0]

    @property
    def group_names(self) -> tuple[str, ...]:
        return tuple(g.name for g in self.groups)

    @property
    def request_names(self) -> tuple[str, ...]:
        """Every name a request may use: group names and aliases."""
        return self.group_names + tuple(a for a, _ in self.aliases)

    def resolve(self, name: str) -> str:
        """The group a group name or alias finally names."""
        table = dict(self.aliases)
        while name in table:
            name = table[name]
        return name

    def all_limits(self) -> list[LimitsModel]:
        out = [g.limits for g in self.groups] + [d.limits for d in self.deployments]
        out += [m.limits for g in self.groups for m in g.members]
        return out


# --------------------------------------------------------------------------- rates


def _rate_text(amount: int, unit: str, multiple: int) -> str:
    if multiple == 1:
        return f"{amount}/{unit}"
    return f"{amount}/{multiple} {unit}s"


@st.composite
def rate_values(
    draw: st.DrawFn, *, amounts: st.SearchStrategy[int], allow_fraction: bool
) -> tuple[Any, tuple[RateModel, ...]]:
    """A raw ``rpm``/``tpm`` value and the rates it means.

    Either a bare number (per minute) or a string of one or two rates with distinct periods.
    """
    if draw(st.booleans()):
        amount: float = draw(amounts)
        if allow_fraction and draw(st.booleans()):
            amount = amount + 0.5
        return amount, (RateModel(float(amount), 60.0),)
    n = draw(st.integers(1, 2))
    choices = [("second", 1), ("second", 2), ("second", 10), ("minute", 1), ("hour", 1)]
    picked = draw(st.lists(st.sampled_from(choices), min_size=n, max_size=n, unique_by=_period_of))
    parts, rates = [], []
    for unit, multiple in picked:
        amount = draw(amounts)
        parts.append(_rate_text(amount, unit, multiple))
        rates.append(RateModel(float(amount), UNITS[unit] * multiple))
    return ";".join(parts), tuple(rates)


def _period_of(choice: tuple[str, int]) -> float:
    return UNITS[choice[0]] * choice[1]


@st.composite
def limits_models(draw: st.DrawFn, *, p_none: float = 0.5) -> LimitsModel:
    """Limits for a deployment, a group or a member reference (often none at all)."""
    if draw(st.floats(0, 1)) < p_none:
        return NO_LIMITS
    rpm_raw: Any = None
    tpm_raw: Any = None
    rpm: tuple[RateModel, ...] = ()
    tpm: tuple[RateModel, ...] = ()
    if draw(st.booleans()):
        rpm_raw, rpm = draw(rate_values(amounts=st.integers(1, 6), allow_fraction=True))
    if draw(st.booleans()):
        tpm_raw, tpm = draw(rate_values(amounts=st.integers(10, 300), allow_fraction=True))
    max_parallel = draw(st.none() | st.integers(1, 3))
    return LimitsModel(
        rpm=rpm, tpm=tpm, max_parallel=max_parallel, rpm_raw=rpm_raw, tpm_raw=tpm_raw
    )


@st.composite
def orders(draw: st.DrawFn) -> tuple[int | None, Any]:
    """An order tier and how it is written: int, integral float or numeric string."""
    value = draw(st.none() | st.integers(0, 2))
    if value is None:
        return None, None
    raw = draw(st.sampled_from([value, float(value), str(value)]))
    return value, raw


weights = st.none() | st.sampled_from([0.0, 1.0, 2.0, 3.0, 0.5])
costs = st.none() | st.sampled_from([0.0, 1e-6, 2e-6, 3e-5])


@st.composite
def tree_models(
    draw: st.DrawFn, *, max_groups: int = 4, max_deployments: int = 5, max_members: int = 4
) -> TreeModel:
    """A random valid tree (a DAG) with shared deployments and shared sub-groups."""
    n_dep = draw(st.integers(1, max_deployments))
    n_grp = draw(st.integers(1, max_groups))
    deployments = tuple(
        DeploymentModel(f"d{i}", draw(limits_models()), draw(weights), draw(costs))
        for i in range(n_dep)
    )
    # Aliases first, so members can use them: each names a group or an earlier alias.
    aliases: list[tuple[str, str]] = []
    for k in range(draw(st.integers(0, 2))):
        names = [f"g{j}" for j in range(n_grp)] + [a for a, _ in aliases]
        aliases.append((f"a{k}", draw(st.sampled_from(names))))
    table = dict(aliases)

    def resolve(name: str) -> str:
        while name in table:
            name = table[name]
        return name

    groups = []
    for i in range(n_grp):
        targets = [("deployment", d.id) for d in deployments]
        targets += [("group", f"g{j}") for j in range(i + 1, n_grp)]
        targets += [("group", a) for a, _ in aliases if int(resolve(a)[1:]) > i]
        chosen = draw(
            st.lists(
                st.sampled_from(targets),
                min_size=1,
                max_size=min(max_members, len(targets)),
                unique_by=lambda kt: resolve(kt[1]),  # one reference per child
            )
        )
        members = []
        for kind, target in chosen:
            order, order_raw = draw(orders())
            members.append(
                MemberModel(
                    target=target,
                    kind=kind,
                    order=order,
                    order_raw=order_raw,
                    weight=draw(weights),
                    limits=draw(limits_models(p_none=0.7)),
                )
            )
        groups.append(
            GroupModel(
                name=f"g{i}",
                members=tuple(members),
                strategy=draw(st.sampled_from(STRATEGY_NAMES)),
                limits=draw(limits_models(p_none=0.6)),
            )
        )
    return TreeModel(groups=tuple(groups), deployments=deployments, aliases=tuple(aliases))


def tree_specs(**kwargs: int) -> st.SearchStrategy[TreeSpec]:
    """Random valid :class:`TreeSpec` objects (see :func:`tree_models`)."""
    return tree_models(**kwargs).map(TreeModel.to_spec)
