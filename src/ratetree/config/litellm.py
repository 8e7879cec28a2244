"""Read a LiteLLM ``model_list`` (plus router settings) into a :class:`TreeSpec`.

Each distinct ``model_name`` becomes a group. An entry whose ``litellm_params.model`` names
another group (directly or through ``model_group_alias``) and that carries nothing but
routing keys (see :data:`ratetree.config.values.ROUTING_KEYS`) is a reference to that
group; every other entry is a deployment, as LiteLLM reads it, and its original dict
travels along as the payload. Values are read as LiteLLM reads them (``os.environ/NAME``,
numeric strings, limits beside ``litellm_params``): see :mod:`ratetree.config.values`.

The input usually comes straight from YAML, so nothing about its shape is trusted: every
problem is reported as a :class:`ConfigError` that points at the entry at fault.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from ratetree.config.expansion import Expansion, plain
from ratetree.config.values import (
    entry_value,
    from_environment,
    non_routing_keys,
    read_value,
    refuse_unknown,
)
from ratetree.core.graph import find_cycle, resolve_aliases
from ratetree.core.specs import (
    Deployment,
    Group,
    Limits,
    Member,
    TreeSpec,
    check_cost,
    check_order,
    check_weight,
)
from ratetree.core.validate import clip, show
from ratetree.errors import ConfigError

__all__ = ["load_litellm"]

# LiteLLM's routing_strategy names -> ratetree's strategy names (the registry's keys).
_STRATEGIES: dict[str, str] = {
    "simple-shuffle": "shuffle",
    "least-busy": "least-busy",
    "usage-based-routing": "usage-based",
    "usage-based-routing-v2": "usage-based",
    "round-robin": "round-robin",
    "latency-based-routing": "latency-based",
    "cost-based-routing": "cost-based",
}
# LiteLLM hands routing_strategy_args to the latency-based strategy only ("just for
# latency-based"); the other strategies ignore them there, and so here.
_TAKES_ARGS = frozenset({"latency-based"})
# Per-token prices; their sum is a deployment's cost for the cost-based strategy.
_COST_KEYS = ("input_cost_per_token", "output_cost_per_token")
_LIMIT_KEYS = ("rpm", "tpm", "max_parallel_requests")
_READ_KEYS = (*_LIMIT_KEYS, "order", "weight", *_COST_KEYS)


@dataclass(frozen=True, eq=False)
class _Entry:
    """One model_list entry after its shape has been checked."""

    index: int
    where: str  # "model_list[3] (model_name 'fast')", the prefix of every error about it
    group: str
    model: str
    params: Mapping[object, object]
    info: Mapping[object, object]
    raw: object
    values: Mapping[str, object]  # the routing keys, read where LiteLLM reads them
    provider_keys: tuple[str, ...]  # what makes it a deployment even if model names a group

    def read(self, key: str) -> object:
        return self.values.get(key)


@contextmanager
def _blame(where: str) -> Iterator[None]:
    """Prefix errors from the spec converters with the place the value came from."""
    try:
        yield
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _strategy(routing_strategy: object) -> str:
    """The core strategy for a LiteLLM strategy name (None: simple-shuffle)."""
    if isinstance(routing_strategy, enum.Enum):  # litellm.types.router.RoutingStrategy
        routing_strategy = routing_strategy.value
    if routing_strategy is None:
        return "shuffle"
    if isinstance(routing_strategy, str) and routing_strategy in _STRATEGIES:
        return _STRATEGIES[routing_strategy]
    raise ConfigError(
        f"routing_strategy {show(routing_strategy)} is not supported; "
        f"use one of {', '.join(_STRATEGIES)}"
    )


def _parse_entry(index: int, raw: object, environ: Mapping[str, str]) -> _Entry:
    where = f"model_list[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: an entry must be a mapping, got {show(raw)}")
    name = raw.get("model_name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: model_name {show(name)} must be a non-empty string")
    where = f"{where} (model_name {show(name)})"
    params = raw.get("litellm_params")
    if not isinstance(params, Mapping):
        raise ConfigError(f"{where}: litellm_params {show(params)} must be a mapping")
    with _blame(where):
        model = from_environment(params.get("model"), "litellm_params.model", environ)
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}: litellm_params.model {show(model)} must be a non-empty string")
    info = raw.get("model_info")
    if info is None:
        info = {}
    elif not isinstance(info, Mapping):
        raise ConfigError(f"{where}: model_info {show(info)} must be a mapping")
    with _blame(where):
        values = {key: entry_value(raw, key, environ) for key in _READ_KEYS}
    if isinstance(values["weight"], str):
        raise ConfigError(
            f"{where}: weight {show(values['weight'])} is a string; LiteLLM's simple-shuffle "
            f"refuses a weight that is not a number"
        )
    provider_keys = tuple(non_routing_keys(raw))
    return _Entry(index, where, name, model, params, info, raw, values, provider_keys)


def _limits(values: Mapping[str, object], where: str) -> Limits:
    # Limits' converters do the checking, and their messages name the key and value.
    with _blame(where):
        return Limits(**values)


def _entry_limits(entry: _Entry) -> Limits:
    return _limits({key: entry.read(key) for key in _LIMIT_KEYS}, entry.where)


def _entry_cost(entry: _Entry) -> float | None:
    """input_cost_per_token + output_cost_per_token (a missing one counts 0), or None
    when the entry names neither."""
    prices = []
    for key in _COST_KEYS:
        with _blame(entry.where):
            price = check_cost(entry.read(key), key)
        if price is not None:
            prices.append(price)
    return sum(prices) if prices else None


def _strategy_args(routing_strategy_args: object, strategy: str) -> dict[str, object]:
    if routing_strategy_args is None:
        return {}
    if not isinstance(routing_strategy_args, Mapping) or not all(
        isinstance(key, str) for key in routing_strategy_args
    ):
        raise ConfigError(
            f"routing_strategy_args {show(routing_strategy_args)} must be a mapping "
            "with string keys"
        )
    return dict(routing_strategy_args) if strategy in _TAKES_ARGS else {}


def _parse_aliases(
    model_group_alias: object, groups: Mapping[str, object]
) -> tuple[dict[str, str], frozenset[str]]:
    """Return alias -> final group name, and the hidden aliases."""
    if model_group_alias is None:
        return {}, frozenset()
    if not isinstance(model_group_alias, Mapping):
        raise ConfigError(f"model_group_alias {show(model_group_alias)} must be a mapping")
    targets: dict[str, str] = {}
    hidden: set[str] = set()
    for alias, value in model_group_alias.items():
        where = f"model_group_alias[{show(alias)}]"
        if not isinstance(alias, str) or not alias:
            raise ConfigError(f"{where}: an alias must be a non-empty string")
        if alias in groups:
            raise ConfigError(f"{where}: alias {show(alias)} shadows group {show(alias)}")
        target = value
        if isinstance(value, Mapping):
            unknown = sorted(map(show, set(value) - {"model", "hidden"}))
            if unknown:
                raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}")
            target = value.get("model")
            is_hidden = value.get("hidden", False)
            if not isinstance(is_hidden, bool):
                raise ConfigError(f"{where}: hidden {show(is_hidden)} must be true or false")
            if is_hidden:
                hidden.add(alias)
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{where}: target {show(target)} must be a non-empty string")
        targets[alias] = target

    try:
        resolved = resolve_aliases(targets, groups)
    except ConfigError as err:
        raise ConfigError(f"model_group_alias: {err}") from None
    return resolved, frozenset(hidden)


def _per_group(
    what: str, settings: object, groups: Mapping[str, object], aliases: Mapping[str, str]
) -> Iterator[tuple[str, str, object]]:
    """(group, where, value) for every item of a mapping keyed by model_name."""
    if settings is None:
        return
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{what} {show(settings)} must be a mapping")
    for name, value in settings.items():
        where = f"{what}[{show(name)}]"
        if not isinstance(name, str) or name not in groups:
            is_alias = isinstance(name, str) and name in aliases
            hint = f"; it is an alias of {show(aliases[name])}" if is_alias else ""
            raise ConfigError(f"{where}: {show(name)} is not a model_name in model_list{hint}")
        yield name, where, value


def _parse_group_strategies(
    group_strategies: object,
    groups: Mapping[str, object],
    aliases: Mapping[str, str],
    environ: Mapping[str, str],
) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, where, value in _per_group("group_strategies", group_strategies, groups, aliases):
        with _blame(where):
            result[name] = _strategy(from_environment(value, "routing_strategy", environ))
    return result


def _parse_group_limits(
    group_limits: object,
    groups: Mapping[str, object],
    aliases: Mapping[str, str],
    environ: Mapping[str, str],
) -> dict[str, Limits]:
    result: dict[str, Limits] = {}
    for name, where, values in _per_group("group_limits", group_limits, groups, aliases):
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: {show(values)} must be a mapping of limits")
        refuse_unknown(where, values, _LIMIT_KEYS)
        with _blame(where):
            read = {str(k): read_value(v, str(k), environ) for k, v in values.items()}
        result[name] = _limits(read, where)
    return result


def _fingerprint(entry: _Entry, expansion: Expansion) -> tuple[str, str]:
    """Return (content digest for a generated id, definition for comparing shared ids).

    The definition leaves out ``order``: it ranks a member in one group, so the same
    deployment may carry different orders in different groups. Raises ConfigError for an
    entry that cannot be serialised or that shared values would expand too far.
    """

    def without_order(mapping: Mapping[object, object]) -> dict[object, object]:
        return {k: v for k, v in mapping.items() if k != "order"}

    parts = [entry.group, entry.params, entry.info]
    try:
        expansion.add(parts)
        content = json.dumps(plain(parts), sort_keys=True)
        definition = json.dumps(
            plain([without_order(entry.params), without_order(entry.info)]), sort_keys=True
        )
    except (ConfigError, ValueError) as err:  # expands too far, an int too long to print
        raise ConfigError(f"{entry.where}: the entry cannot be serialised ({err})") from None
    return hashlib.sha256(content.encode()).hexdigest()[:16], definition


class _Builder:
    """Collects groups, deployments and reference edges in first-appearance order."""

    def __init__(self, groups: Mapping[str, object], aliases: Mapping[str, str]) -> None:
        self.groups = groups
        self.aliases = aliases
        self.members: dict[str, list[Member]] = {name: [] for name in groups}
        self.deployments: dict[str, Deployment] = {}
        # id -> (definition, explicit?, entry): to share or reject a repeated id
        self.owners: dict[str, tuple[str, bool, _Entry]] = {}
        self.seen_digests: dict[str, int] = {}
        self.edges: dict[str, list[tuple[str, _Entry]]] = {name: [] for name in groups}
        # (group, "group" or "deployment", target) -> the entry that added that member
        self.member_entries: dict[tuple[str, str, str], _Entry] = {}
        self.expansion = Expansion()

    def reference_target(self, entry: _Entry) -> str | None:
        """The group ``entry`` refers to, or None when it is a deployment."""
        target = self.aliases.get(entry.model, entry.model)
        # `model_name: gpt-4o` with `model: gpt-4o` is a deployment, not a self-reference;
        # so is an entry with provider parameters or an id, which LiteLLM calls directly,
        # and a wildcard model (`openai/*`), which LiteLLM fills in from the request.
        if (
            target == entry.group
            or target not in self.groups
            or entry.provider_keys
            or "*" in entry.model
        ):
            return None
        return target

    def add(self, entry: _Entry) -> None:
        with _blame(entry.where):
            order = check_order(entry.read("order"))
        with _blame(entry.where):
            weight = check_weight(entry.read("weight"))
        target = self.reference_target(entry)
        if target is not None:
            member = Member(group=target, order=order, weight=weight, limits=_entry_limits(entry))
            self.edges[entry.group].append((target, entry))
        else:
            deployment_id = self.add_deployment(entry, weight)
            member = Member(deployment=deployment_id, order=order)
        # A group listing the same target twice is a copy-paste slip, not a second route.
        key = (entry.group, "deployment" if member.group is None else "group", member.target)
        other = self.member_entries.setdefault(key, entry)
        if other is not entry:
            raise ConfigError(
                f"{entry.where}: {key[1]} {show(member.target)} is already a member of this group "
                f"through model_list[{other.index}]"
            )
        self.members[entry.group].append(member)

    def add_deployment(self, entry: _Entry, weight: float | None) -> str:
        limits = _entry_limits(entry)
        digest, definition = _fingerprint(entry, self.expansion)
        explicit = entry.info.get("id")
        if explicit is None:
            # Identical entries are allowed (LiteLLM treats them as separate deployments):
            # number the repeats so each id stays the same across restarts.
            count = self.seen_digests[digest] = self.seen_digests.get(digest, 0) + 1
            deployment_id = digest if count == 1 else f"{digest}-{count}"
        elif isinstance(explicit, int) and not isinstance(explicit, bool):
            deployment_id = str(explicit)
        elif isinstance(explicit, str) and explicit:
            deployment_id = explicit
        else:
            raise ConfigError(
                f"{entry.where}: model_info.id {show(explicit)} must be a non-empty string"
            )

        owner = self.owners.get(deployment_id)
        if owner is not None:
            other_definition, other_explicit, other = owner
            if explicit is None or not other_explicit:  # a model_info.id equal to a hash
                raise ConfigError(
                    f"{entry.where}: deployment id {show(deployment_id)} is also the id of "
                    f"{other.where}"
                )
            if other_definition != definition:
                raise ConfigError(
                    f"{entry.where}: deployment id {show(deployment_id)} is also used by "
                    f"{other.where} with a different definition"
                )
            return deployment_id  # one deployment shared by several groups
        self.owners[deployment_id] = (definition, explicit is not None, entry)
        self.deployments[deployment_id] = Deployment(
            deployment_id,
            limits,
            weight,
            payload=entry.raw,
            label=entry.model,
            cost=_entry_cost(entry),
        )
        return deployment_id

    def check_cycles(self) -> None:
        """Reject reference cycles, naming the entry whose reference closes one."""
        cycle = find_cycle({g: [t for t, _ in edges] for g, edges in self.edges.items()})
        if cycle:
            entry = next(e for t, e in self.edges[cycle[-2]] if t == cycle[-1])
            raise ConfigError(
                f"{entry.where}: reference to {show(entry.model)} closes a cycle: "
                f"{clip(' -> '.join(cycle))}"
            )


def load_litellm(
    model_list: object,
    *,
    model_group_alias: object = None,
    routing_strategy: object = "simple-shuffle",
    group_limits: object = None,
    group_strategies: object = None,
    routing_strategy_args: object = None,
    environ: Mapping[str, str] = os.environ,
) -> TreeSpec:
    """Build a :class:`TreeSpec` from LiteLLM's ``model_list`` and router settings.

    ``model_group_alias`` maps an alias to a group (or alias) name or to
    ``{"model": name, "hidden": bool}``. ``routing_strategy`` is a LiteLLM strategy name
    (None means the default, simple-shuffle) and applies to every group that
    ``group_strategies`` (model_name -> strategy name) does not name;
    ``routing_strategy_args`` (e.g. ``{"lowest_latency_buffer": 0.1}``) go to the
    latency-based groups and are ignored by the others, as in LiteLLM. ``group_limits``
    maps a model_name to ``{"rpm": ..., "tpm": ..., "max_parallel_requests": ...}``.
    ``input_cost_per_token`` and ``output_cost_per_token`` (litellm_params first, then
    model_info) give a deployment's cost. ``os.environ/NAME`` values are looked up in
    ``environ``.

    Groups and deployments come out in order of first appearance. A deployment's id is
    ``model_info.id`` when given, else a hash of the entry that is stable across restarts.

    Raises:
        ConfigError: for anything malformed, among them: a model_list or entry of the wrong
            shape; a missing or non-string model_name or litellm_params.model; invalid
            rpm, tpm, max_parallel_requests, order, weight or per-token cost; an
            unsupported routing strategy; routing_strategy_args that are not a mapping;
            an alias that shadows a group, loops, or leads to no group; group_limits or
            group_strategies for an unknown group, unknown keys or strategies; an
            ``os.environ/NAME`` value whose variable is unset; one model_info.id on
            entries with different definitions; a cycle of references between groups.
            Messages about an entry start with ``model_list[i] (model_name 'x'):``.
    """
    strategy = _strategy(from_environment(routing_strategy, "routing_strategy", environ))
    _strategy_args(routing_strategy_args, strategy)  # refused early whatever the strategy
    if not isinstance(model_list, (list, tuple)):
        raise ConfigError(f"model_list {show(model_list)} must be a list of entries")
    entries = [_parse_entry(index, raw, environ) for index, raw in enumerate(model_list)]
    groups = {entry.group: None for entry in entries}  # a dict keeps first-appearance order
    aliases, hidden = _parse_aliases(model_group_alias, groups)
    limits = _parse_group_limits(group_limits, groups, aliases, environ)
    strategies = _parse_group_strategies(group_strategies, groups, aliases, environ)

    builder = _Builder(groups, aliases)
    for entry in entries:
        builder.add(entry)
    builder.check_cycles()
    tree_groups = [
        Group(
            name,
            members,
            strategies.get(name, strategy),
            limits.get(name, Limits()),
            _strategy_args(routing_strategy_args, strategies.get(name, strategy)),
        )
        for name, members in builder.members.items()
    ]
    return TreeSpec(
        groups=tree_groups,
        deployments=builder.deployments.values(),
        aliases=aliases,
        hidden=hidden,
    )
