"""Read a LiteLLM ``model_list`` (plus router settings) into a :class:`TreeSpec`.

Each distinct ``model_name`` becomes a group. An entry whose ``litellm_params.model`` names
another group (directly or through ``model_group_alias``) is a reference to that group;
every other entry is a deployment, and its original dict travels along as the payload.

The input usually comes straight from YAML, so nothing about its shape is trusted: every
problem is reported as a :class:`ConfigError` that points at the entry at fault.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from ratetree.core.graph import find_cycle, resolve_aliases
from ratetree.core.specs import (
    Deployment,
    Group,
    Limits,
    Member,
    Strategy,
    TreeSpec,
    check_order,
    check_weight,
)
from ratetree.core.validate import clip, show
from ratetree.errors import ConfigError

__all__ = ["load_litellm"]

_STRATEGIES: dict[str, Strategy] = {
    "simple-shuffle": "shuffle",
    "least-busy": "least-busy",
    "usage-based-routing": "usage-based",
    "usage-based-routing-v2": "usage-based",
    "round-robin": "round-robin",
}
_LIMIT_KEYS = ("rpm", "tpm", "max_parallel_requests")


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

    def read(self, key: str) -> object:
        # LiteLLM looks in litellm_params first and falls back to model_info.
        value = self.params.get(key)
        return self.info.get(key) if value is None else value


@contextmanager
def _blame(where: str) -> Iterator[None]:
    """Prefix errors from the spec converters with the place the value came from."""
    try:
        yield
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def _strategy(routing_strategy: object) -> Strategy:
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


def _parse_entry(index: int, raw: object) -> _Entry:
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
    model = params.get("model")
    if not isinstance(model, str) or not model:
        raise ConfigError(f"{where}: litellm_params.model {show(model)} must be a non-empty string")
    info = raw.get("model_info")
    if info is None:
        info = {}
    elif not isinstance(info, Mapping):
        raise ConfigError(f"{where}: model_info {show(info)} must be a mapping")
    return _Entry(index, where, name, model, params, info, raw)


def _limits(values: Mapping[str, object], where: str) -> Limits:
    # Limits' converters do the checking, and their messages name the key and value.
    with _blame(where):
        return Limits(**values)


def _entry_limits(entry: _Entry) -> Limits:
    return _limits({key: entry.read(key) for key in _LIMIT_KEYS}, entry.where)


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


def _parse_group_limits(
    group_limits: object, groups: Mapping[str, object], aliases: Mapping[str, str]
) -> dict[str, Limits]:
    if group_limits is None:
        return {}
    if not isinstance(group_limits, Mapping):
        raise ConfigError(f"group_limits {show(group_limits)} must be a mapping")
    result: dict[str, Limits] = {}
    for name, values in group_limits.items():
        where = f"group_limits[{show(name)}]"
        if not isinstance(name, str) or name not in groups:
            is_alias = isinstance(name, str) and name in aliases
            hint = f"; it is an alias of {show(aliases[name])}" if is_alias else ""
            raise ConfigError(f"{where}: {show(name)} is not a model_name in model_list{hint}")
        if values is None:
            values = {}
        if not isinstance(values, Mapping):
            raise ConfigError(f"{where}: {show(values)} must be a mapping of limits")
        unknown = sorted(map(show, set(values) - set(_LIMIT_KEYS)))
        if unknown:
            raise ConfigError(
                f"{where}: unknown keys {', '.join(unknown)}; use {', '.join(_LIMIT_KEYS)}"
            )
        result[name] = _limits(values, where)
    return result


#: How many values shared containers (YAML aliases) may add to the entries when they are
#: expanded for fingerprinting, over one whole model_list; past it the load is refused.
#: The command line refuses a YAML document whose aliases add more nodes than this.
MAX_EXPANSION = 1_000_000
#: How deeply containers may nest inside an entry (the command line: inside a document).
MAX_NESTING = 100


class _Expansion:
    """Sizes of entries as their fingerprints would spell them out, found in time linear
    in the distinct containers: a YAML alias bomb (a 700-byte file that expands to 9**9
    values) is refused before anything expands it."""

    __slots__ = ("distinct", "expanded", "keep", "sizes")

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}  # id -> expanded size, -1 while being sized
        self.keep: list[object] = []  # holds sized containers, so no id is reused
        self.distinct = 0  # values counted once however often they are shared
        self.expanded = 0  # values counted once per appearance

    def add(self, value: object) -> None:
        """Count ``value`` (an entry); raises ConfigError once the values shared
        containers add pass MAX_EXPANSION, or for a container nested too deeply or
        holding itself."""
        self.expanded += self._size(value, 0)
        if self.expanded - self.distinct > MAX_EXPANSION:
            raise ConfigError(
                f"the entries expand to more than {MAX_EXPANSION:,} values beyond their "
                f"own through shared (YAML alias) values"
            )

    def _size(self, value: object, depth: int) -> int:
        if isinstance(value, Mapping):
            items: Iterable[object] = (*value.keys(), *value.values())
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            return 1
        size = self.sizes.get(id(value))
        if size is not None:
            if size < 0:
                raise ConfigError("contains itself")
            return size
        if depth >= MAX_NESTING:
            raise ConfigError(f"nests containers more than {MAX_NESTING} levels deep")
        self.sizes[id(value)] = -1
        self.keep.append(value)
        size = 1
        for item in items:
            size += self._size(item, depth + 1)
            if not isinstance(item, (Mapping, list, tuple)):
                self.distinct += 1
        self.distinct += 1
        self.sizes[id(value)] = size
        return size


def _plain(value: object) -> object:
    """``value`` as JSON-ready data with string keys, so any entry can be hashed and
    compared; ``value`` has been sized by :class:`_Expansion`, so this ends."""
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, str) else f"<{type(k).__name__}>{show(k)}": _plain(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)  # what json.dumps(default=str) would do


def _fingerprint(entry: _Entry, expansion: _Expansion) -> tuple[str, str]:
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
        content = json.dumps(_plain(parts), sort_keys=True)
        definition = json.dumps(
            _plain([without_order(entry.params), without_order(entry.info)]), sort_keys=True
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
        self.expansion = _Expansion()

    def reference_target(self, entry: _Entry) -> str | None:
        """The group ``entry`` refers to, or None when it is a deployment."""
        target = self.aliases.get(entry.model, entry.model)
        # `model_name: gpt-4o` with `model: gpt-4o` is a deployment, not a self-reference.
        if target == entry.group or target not in self.groups:
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
            deployment_id, limits, weight, payload=entry.raw, label=entry.model
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
) -> TreeSpec:
    """Build a :class:`TreeSpec` from LiteLLM's ``model_list`` and router settings.

    ``model_group_alias`` maps an alias to a group (or alias) name or to
    ``{"model": name, "hidden": bool}``. ``routing_strategy`` is a LiteLLM strategy name
    (None means the default, simple-shuffle) and applies to every group. ``group_limits``
    maps a model_name to ``{"rpm": ..., "tpm": ..., "max_parallel_requests": ...}``.

    Groups and deployments come out in order of first appearance. A deployment's id is
    ``model_info.id`` when given, else a hash of the entry that is stable across restarts.

    Raises:
        ConfigError: for anything malformed, among them: a model_list or entry of the wrong
            shape; a missing or non-string model_name or litellm_params.model; invalid
            rpm, tpm, max_parallel_requests, order or weight; an unsupported routing
            strategy; an alias that shadows a group, loops, or leads to no group;
            group_limits for an unknown group or with unknown keys; one model_info.id on
            entries with different definitions; a cycle of references between groups.
            Messages about an entry start with ``model_list[i] (model_name 'x'):``.
    """
    strategy = _strategy(routing_strategy)
    if not isinstance(model_list, (list, tuple)):
        raise ConfigError(f"model_list {show(model_list)} must be a list of entries")
    entries = [_parse_entry(index, raw) for index, raw in enumerate(model_list)]
    groups = {entry.group: None for entry in entries}  # a dict keeps first-appearance order
    aliases, hidden = _parse_aliases(model_group_alias, groups)
    limits = _parse_group_limits(group_limits, groups, aliases)

    builder = _Builder(groups, aliases)
    for entry in entries:
        builder.add(entry)
    builder.check_cycles()
    tree_groups = [
        Group(name, members, strategy, limits.get(name, Limits()))
        for name, members in builder.members.items()
    ]
    return TreeSpec(
        groups=tree_groups,
        deployments=builder.deployments.values(),
        aliases=aliases,
        hidden=hidden,
    )
