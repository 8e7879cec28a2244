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
from ratetree.core.validate import show
from ratetree.errors import ConfigError

#: the strategy names a group may use: the keys of the strategy registry
STRATEGIES: tuple[str, ...] = tuple(REGISTRY)
#: A strategy's name: one of STRATEGIES (checked when a Group is made).
Strategy = str


@attrs.frozen
class Rate:
    """``amount`` units per ``period`` seconds: a token bucket of capacity ``amount``
    that refills ``amount`` every ``period`` and starts full."""

    amount: float
    period: float

    @property
    def per_minute(self) -> float:
        return self.amount * 60.0 / self.period

    def __str__(self) -> str:
        return f"{self.amount:g}/{self.period:g}s"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_float(value: object) -> float:
    """A number as a float; integers too large for a float become infinity."""
    try:
        return float(value)  # type: ignore[arg-type]
    except OverflowError:
        return math.inf


def parse_rates(value: object, what: str) -> tuple[Rate, ...]:
    """Turn ``30``, ``"30/minute"`` or ``"5/second;100/minute"`` into rates.

    A bare number means "per minute". Raises ConfigError naming ``what`` and the value.
    """
    if value is None:
        return ()
    if isinstance(value, tuple) and all(isinstance(r, Rate) for r in value):
        return value
    if isinstance(value, Rate):
        return (value,)
    if _is_number(value):
        amount = _as_float(value)
        if not math.isfinite(amount) or amount <= 0:
            raise ConfigError(f"{what} {show(value)} must be a positive number")
        return (Rate(amount, 60.0),)
    if isinstance(value, str):
        import limits as _limits  # here: the package imports asyncio, and rate strings are rare

        try:
            items = _limits.parse_many(value)
        except (ValueError, OverflowError):
            raise ConfigError(
                f"{what} {show(value)} is not a number or a rate such as '30/minute'"
            ) from None
        rates = []
        for item in items:
            if not 0 < item.amount < math.inf:
                raise ConfigError(f"{what} {show(value)} must allow a positive amount")
            rates.append(Rate(float(item.amount), float(item.get_expiry())))
        return tuple(rates)
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
    weight = _as_float(value) if _is_number(value) else math.nan
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
        if rate.amount < 1:
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


@attrs.frozen
class Deployment:
    """A leaf: one provider endpoint with its own limits. ``payload`` is opaque to ratetree
    (for LiteLLM, the original model_list entry) and handed back on the lease; ``weight``
    feeds the shuffle and round-robin strategies, ``cost`` (a price per input token plus
    one per output token) the cost-based one."""

    id: str = attrs.field(validator=_nonempty_str("deployment id"))
    limits: Limits = NO_LIMITS
    weight: float | None = attrs.field(default=None, converter=check_weight)
    payload: Any = attrs.field(default=None, eq=False, hash=False)
    #: a human-readable name shown beside the id by ``explain`` (LiteLLM: the model string)
    label: str | None = None
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
    limits: Limits = NO_LIMITS

    def __attrs_post_init__(self) -> None:
        if (self.deployment is None) == (self.group is None):
            raise ConfigError(
                f"a member names exactly one of deployment= or group=, "
                f"got deployment={self.deployment!r}, group={self.group!r}"
            )
        target = self.target
        if not isinstance(target, str) or not target:
            raise ConfigError(f"member target {target!r} must be a non-empty string")

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


# Typed converters (rather than bare ``tuple``) let mypy check callers' arguments.
def _members(value: Iterable[Member]) -> tuple[Member, ...]:
    return tuple(value)


def _groups(value: Iterable[Group]) -> tuple[Group, ...]:
    return tuple(value)


def _deployments(value: Iterable[Deployment]) -> tuple[Deployment, ...]:
    return tuple(value)


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


@attrs.frozen
class Group:
    """A named node whose members are deployments or other groups. ``limits`` are shared by
    all traffic that passes through the group."""

    name: str = attrs.field(validator=_nonempty_str("group name"))
    members: tuple[Member, ...] = attrs.field(converter=_members)
    strategy: str = attrs.field(default="shuffle", validator=_check_strategy)
    limits: Limits = NO_LIMITS
    #: options for the strategy (LiteLLM's ``routing_strategy_args``), checked by the
    #: strategy when the tree is built
    strategy_args: Mapping[str, object] = attrs.field(
        factory=dict, converter=_strategy_args, hash=False
    )

    def __attrs_post_init__(self) -> None:
        if not self.members:
            raise ConfigError(f"group {self.name!r} has no members")


def _frozen_mapping(value: Mapping[str, str]) -> Mapping[str, str]:
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
