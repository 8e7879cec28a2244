"""Frozen configuration objects: what the tree looks like, never how full it is.

Runtime state (buckets, leases in flight, cooldowns) lives in ``_state``; a spec is never
mutated, so one spec can be shared, hashed and compared freely.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from ratetree.core.strategies import REGISTRY
from ratetree.core.validate import as_real, show
from ratetree.errors import ConfigError, SpecTypeError

#: the strategy names a group may use: the keys of the strategy registry
STRATEGIES: tuple[str, ...] = tuple(REGISTRY)
#: A strategy's name: one of STRATEGIES (checked when a Group is made).
Strategy = str


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _rate_number(value: object, what: str, *, positive: bool) -> float:
    if not _is_number(value):
        raise SpecTypeError(f"rate {what} {show(value)} must be a number")
    number = as_real(value)
    if not math.isfinite(number) or number < 0 or (positive and number == 0):
        bound = "> 0" if positive else ">= 0"
        raise ConfigError(f"rate {what} {show(value)} must be a finite number {bound}")
    return number


def _amount(value: object) -> float:
    return _rate_number(value, "amount", positive=False)


def _period(value: object) -> float:
    return _rate_number(value, "period", positive=True)


@attrs.frozen
class Rate:
    """``amount`` units per ``period`` seconds: a token bucket of capacity ``amount``
    that refills ``amount`` every ``period`` and starts full.

    ``amount`` is a finite number >= 0 (0: the bucket admits nothing that needs a unit of
    it, as LiteLLM reads ``rpm: 0``); ``period`` a finite number > 0. Raises ConfigError
    for other values and SpecTypeError for a non-number.
    """

    amount: float = attrs.field(converter=_amount)
    period: float = attrs.field(converter=_period)

    @property
    def per_minute(self) -> float:
        return self.amount * 60.0 / self.period

    def __str__(self) -> str:
        return f"{self.amount:g}/{self.period:g}s"


def _rate(amount: object, period: object, what: str, value: object) -> Rate:
    try:
        return Rate(as_real(amount), as_real(period))
    except ConfigError as err:
        raise ConfigError(f"{what} {show(value)}: {err}") from None


def parse_rates(value: object, what: str) -> tuple[Rate, ...]:
    """Turn ``30``, ``"30/minute"`` or ``"5/second;100/minute"`` into rates.

    A bare number means "per minute"; 0 means no capacity. Raises ConfigError naming
    ``what`` and the value.
    """
    if value is None:
        return ()
    if isinstance(value, (tuple, list)) and all(isinstance(r, Rate) for r in value):
        return tuple(value)
    if isinstance(value, Rate):
        return (value,)
    if _is_number(value):
        amount = as_real(value)
        if not math.isfinite(amount) or amount < 0:
            raise ConfigError(f"{what} {show(value)} must be a finite number >= 0")
        return (Rate(amount, 60.0),)
    if isinstance(value, str):
        import limits as _limits  # here: the package imports asyncio, and rate strings are rare

        try:
            items = _limits.parse_many(value)
        except (ValueError, OverflowError):
            raise ConfigError(
                f"{what} {show(value)} is not a number or a rate such as '30/minute'"
            ) from None
        return tuple(_rate(item.amount, item.get_expiry(), what, value) for item in items)
    raise ConfigError(f"{what} {show(value)} is not a number or a rate string")


def _check_parallel(value: object, what: str = "max_parallel_requests") -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{what} {show(value)} must be a positive integer")
    return value


def check_weight(value: object, what: str = "weight") -> float | None:
    """Validate a weight: a finite number >= 0, or None. Raises ConfigError."""
    if value is None:
        return None
    weight = as_real(value)
    if not math.isfinite(weight) or weight < 0:
        raise ConfigError(f"{what} {show(value)} must be a non-negative number")
    return weight


def check_cost(value: object, what: str = "cost") -> float | None:
    """Validate a price per token: a finite number >= 0, or None. Raises ConfigError."""
    return check_weight(value, what)


def check_order(value: object, what: str = "order") -> int | None:
    """Validate an order tier: an integer, or a float or string holding one. Raises ConfigError."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{what} {show(value)} must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return check_order(float(value) if "." in value else int(value.strip()), what)
        except ValueError:
            pass
    raise ConfigError(f"{what} {show(value)} must be an integer")


def _rpm_rates(value: object) -> tuple[Rate, ...]:
    rates = parse_rates(value, "rpm")
    for rate in rates:
        if 0 < rate.amount < 1:
            raise ConfigError(f"rpm {show(value)} has a bucket smaller than one request")
    return rates


def _tpm_rates(value: object) -> tuple[Rate, ...]:
    return parse_rates(value, "tpm")


@attrs.frozen
class Limits:
    """Limits on one node or reference. Every rate must allow a request.

    ``rpm`` and ``tpm`` take a number (per minute), a rate string parsed by the ``limits``
    package, or a tuple of :class:`Rate`. Raises ConfigError for invalid values.
    """

    rpm: tuple[Rate, ...] = attrs.field(default=(), converter=_rpm_rates)
    tpm: tuple[Rate, ...] = attrs.field(default=(), converter=_tpm_rates)
    max_parallel_requests: int | None = attrs.field(default=None, converter=_check_parallel)

    def __bool__(self) -> bool:
        return bool(self.rpm or self.tpm or self.max_parallel_requests is not None)

    def describe(self) -> str:
        parts = [f"rpm {'; '.join(map(str, self.rpm))}"] if self.rpm else []
        if self.tpm:
            parts.append(f"tpm {'; '.join(map(str, self.tpm))}")
        if self.max_parallel_requests is not None:
            parts.append(f"max_parallel {self.max_parallel_requests}")
        return ", ".join(parts)


NO_LIMITS = Limits()


def _nonempty_str(what: str) -> Any:
    def check(_inst: object, _attr: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{what} {show(value)} must be a non-empty string")

    return check


def _is_limits(what: str) -> Any:
    def check(_inst: object, _attr: object, value: object) -> None:
        if not isinstance(value, Limits):
            raise SpecTypeError(
                f"{what} {show(value)} must be a Limits (got {type(value).__name__})"
            )

    return check


def _optional_str(what: str) -> Any:
    def check(_inst: object, _attr: object, value: object) -> None:
        if value is not None and not isinstance(value, str):
            raise SpecTypeError(f"{what} {show(value)} must be a string or None")

    return check


def _all_of(kind: type, items: Iterable[object], what: str) -> None:
    for i, item in enumerate(items):
        if not isinstance(item, kind):
            raise SpecTypeError(
                f"{what}[{i}] {show(item)} must be a {kind.__name__} (got {type(item).__name__})"
            )


@attrs.frozen
class Deployment:
    """A leaf: one provider endpoint with its own limits. ``payload`` is opaque to ratetree
    (for LiteLLM, the original model_list entry) and handed back on the lease; ``weight``
    feeds the shuffle and round-robin strategies, ``cost`` (a price per input token plus
    one per output token) the cost-based one."""

    id: str = attrs.field(validator=_nonempty_str("deployment id"))
    limits: Limits = attrs.field(default=NO_LIMITS, validator=_is_limits("deployment limits"))
    weight: float | None = attrs.field(default=None, converter=check_weight)
    payload: Any = attrs.field(default=None, eq=False, hash=False)
    #: a human-readable name shown beside the id by ``explain`` (LiteLLM: the model string)
    label: str | None = attrs.field(default=None, validator=_optional_str("deployment label"))
    cost: float | None = attrs.field(default=None, converter=check_cost)


@attrs.frozen
class Member:
    """A reference from a group to a deployment or to another group.

    Give exactly one of ``deployment`` (an id) or ``group`` (a name). ``limits`` cap what
    the parent sends through this reference; ``order`` ranks the member inside its parent
    (lower first, unordered members last); ``weight`` overrides the target's weight.
    """

    deployment: str | None = None
    group: str | None = None
    order: int | None = attrs.field(default=None, converter=check_order)
    weight: float | None = attrs.field(default=None, converter=check_weight)
    limits: Limits = attrs.field(default=NO_LIMITS, validator=_is_limits("member limits"))

    def __attrs_post_init__(self) -> None:
        if (self.deployment is None) == (self.group is None):
            raise ConfigError(
                f"a member names exactly one of deployment= or group=, "
                f"got deployment={show(self.deployment)}, group={show(self.group)}"
            )
        target = self.target
        if not isinstance(target, str) or not target:
            raise ConfigError(f"member target {show(target)} must be a non-empty string")

    @property
    def target(self) -> str:
        return self.deployment if self.deployment is not None else self.group  # type: ignore[return-value]


def _check_strategy(_inst: object, _attr: object, value: object) -> None:
    if not isinstance(value, str) or value not in REGISTRY:
        raise ConfigError(f"strategy {show(value)} is not one of {', '.join(STRATEGIES)}")


def _strategy_args(value: Mapping[str, object] | None) -> Mapping[str, object]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ConfigError(f"strategy_args {show(value)} must be a mapping with string keys")
    return MappingProxyType(dict(value))


def _sequence(value: object, what: str) -> tuple[Any, ...]:
    """``value`` as a tuple; a string, a mapping or a non-iterable is a type error."""
    if isinstance(value, (str, bytes, Mapping)):
        raise SpecTypeError(f"{what} {show(value)} must be a list (got {type(value).__name__})")
    try:
        return tuple(value)  # type: ignore[arg-type]
    except TypeError:
        raise SpecTypeError(
            f"{what} {show(value)} must be a list (got {type(value).__name__})"
        ) from None


# Typed converters (rather than bare ``tuple``) let mypy check callers' arguments.
def _members(value: Iterable[Member]) -> tuple[Member, ...]:
    return _sequence(value, "group members")


def _groups(value: Iterable[Group]) -> tuple[Group, ...]:
    groups = _sequence(value, "groups")
    _all_of(Group, groups, "groups")
    return groups


def _deployments(value: Iterable[Deployment]) -> tuple[Deployment, ...]:
    deployments = _sequence(value, "deployments")
    _all_of(Deployment, deployments, "deployments")
    return deployments


def _names(value: Iterable[str]) -> frozenset[str]:
    names = _sequence(value, "hidden")
    for name in names:
        if not isinstance(name, str):
            raise SpecTypeError(f"hidden alias {show(name)} must be a string")
    return frozenset(names)


@attrs.frozen
class Group:
    """A named node whose members are deployments or other groups. ``limits`` are shared by
    all traffic that passes through the group."""

    name: str = attrs.field(validator=_nonempty_str("group name"))
    members: tuple[Member, ...] = attrs.field(converter=_members)
    strategy: Strategy = attrs.field(default="shuffle", validator=_check_strategy)
    limits: Limits = attrs.field(default=NO_LIMITS, validator=_is_limits("group limits"))
    #: options for the strategy (LiteLLM's ``routing_strategy_args``), checked by the
    #: strategy when the tree is built
    strategy_args: Mapping[str, object] = attrs.field(
        factory=dict, converter=_strategy_args, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if not self.members:
            raise ConfigError(f"group {show(self.name)} has no members")
        _all_of(Member, self.members, f"group {show(self.name)} members")


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
    if not isinstance(value, Mapping):
        raise SpecTypeError(f"aliases {show(value)} must be a mapping of alias to group name")
    for alias, target in value.items():
        if not isinstance(alias, str) or not isinstance(target, str):
            raise SpecTypeError(f"aliases[{show(alias)}] = {show(target)} must map str to str")
        if not alias or not target:
            raise ConfigError(f"aliases[{show(alias)}] = {show(target)}: names must be non-empty")
    return MappingProxyType(dict(value))


@attrs.frozen
class TreeSpec:
    """A whole configuration: groups, deployments and alias names for groups.

    ``aliases`` maps an extra name to a group name (or to another alias); ``hidden`` lists
    the aliases a router should not advertise. Built by hand or by :func:`load_litellm`.
    """

    groups: tuple[Group, ...] = attrs.field(converter=_groups)
    deployments: tuple[Deployment, ...] = attrs.field(converter=_deployments)
    aliases: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping, hash=False)
    hidden: frozenset[str] = attrs.field(default=frozenset(), converter=_names)
