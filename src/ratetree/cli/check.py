"""``ratetree check``: the group tree a config describes, and the entries that look ambiguous.

Both work on a config that already loaded: the loader has refused everything invalid, so
what is left to say is how the tree looks and what may not mean what its author thinks.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping

from ratetree.cli.config_file import ConfigFile
from ratetree.clocks import VirtualClock
from ratetree.config.values import PARAMS_ONLY, ROUTING_KEYS, non_routing_keys
from ratetree.core.build import Tree
from ratetree.core.explain import Explanation
from ratetree.core.specs import Deployment, Group, Limits, TreeSpec
from ratetree.core.validate import show
from ratetree.scheduler import Scheduler


def root_groups(spec: TreeSpec) -> list[str]:
    """Groups no other group includes, in config order: where traffic enters the tree."""
    included = {m.group for g in spec.groups for m in g.members if m.group is not None}
    return [g.name for g in spec.groups if g.name not in included]


def _describe(order: int | None, weight: float | None, limits: Limits) -> str:
    bits = [] if order is None else [f"order {order}"]
    if weight is not None:
        bits.append(f"weight {weight:g}")
    if limits:
        bits.append(limits.describe())
    return ", ".join(bits)


def _lines(
    node: Explanation,
    parent: Group,
    groups: Mapping[str, Group],
    deployments: Mapping[str, Deployment],
    prefix: str,
    shown: set[str],
) -> Iterator[str]:
    """The members of ``node``, drawn below it; a group already drawn (``shown``) gets one
    line that refers back, so a group shared along many paths is drawn once."""
    for i, child in enumerate(node.children):
        last = i == len(node.children) - 1
        branch = "└── " if last else "├── "
        if child.kind == "group":
            group = groups[child.name]
            member = next(m for m in parent.members if m.group == child.name)
            on_ref = _describe(child.order, child.weight, member.limits)
            own = group.limits.describe()
            text = f"{child.name} [{group.strategy}]"
            text += f"  {on_ref}" if on_ref else ""
            text += f"  (group: {own})" if own else ""
            if child.name in shown:
                yield prefix + branch + text + "  [members as shown above]"
                continue
            shown.add(child.name)
            yield prefix + branch + text
            indent = prefix + ("    " if last else "│   ")
            yield from _lines(child, group, groups, deployments, indent, shown)
        else:
            about = _describe(child.order, child.weight, deployments[child.name].limits)
            yield f"{prefix}{branch}{child.label or child.name}  {about}  [id {child.name}]"


def render_tree(spec: TreeSpec) -> str:
    """Every root group with everything below it: strategy, order, weight and limits per
    member (a reference's own limits beside its order, a group's shared limits after it).
    A group reached again is drawn as one line marked ``[members as shown above]``."""
    scheduler = Scheduler(spec, clock=VirtualClock(), rng=random.Random(0))
    groups = {g.name: g for g in spec.groups}
    deployments = {d.id: d for d in spec.deployments}
    out: list[str] = []
    shown: set[str] = set()
    for name in root_groups(spec):
        group = groups[name]
        own = group.limits.describe()
        out.append(f"{name} [{group.strategy}]" + (f"  (group: {own})" if own else ""))
        out.extend(_lines(scheduler.explain(name), group, groups, deployments, "", shown))
    for alias, target in spec.aliases.items():
        out.append(f"alias {alias} -> {target}" + (" (hidden)" if alias in spec.hidden else ""))
    wildcards = [group.name for _, group in Tree(spec).patterns]
    if wildcards:
        out.append("wildcards, tried in this order for a name no group or alias has:")
        out.extend(f"  {name}" for name in wildcards)
    return "\n".join(out)


def _reference_warnings(config: ConfigFile, spec: TreeSpec) -> Iterator[str]:
    names = {g.name for g in spec.groups}
    for index, entry in enumerate(config.model_list):
        group, model = entry["model_name"], entry["litellm_params"]["model"]
        target = spec.aliases.get(model, model) if isinstance(model, str) else None
        if target == group or target not in names or "*" in model:
            continue  # a deployment of a model no group is named after, or a wildcard
        where = f"{config.where(f'model_list[{index}]')}: model_list[{index}] ({show(group)})"
        extra = non_routing_keys(entry)
        if extra:
            yield (
                f"{where}: model {show(model)} names group {show(target)}, but the entry also sets "
                f"{', '.join(extra)}, so it is a deployment calling model {show(model)} (as "
                f"LiteLLM reads it); to make it a reference to the group, keep only "
                f"{', '.join(sorted(ROUTING_KEYS))}"
            )
        elif model in spec.aliases:
            yield (
                f"{where}: model {show(model)} is an alias of group {show(target)}, so this entry "
                f"is a reference to that group, not a deployment"
            )


def _weight_warnings(config: ConfigFile, spec: TreeSpec) -> Iterator[str]:
    """Where ratetree's shuffle weights and LiteLLM's part: keys LiteLLM never weighs by."""
    strategies = {g.name: g.strategy for g in spec.groups}
    for index, entry in enumerate(config.model_list):
        params, info = entry["litellm_params"], entry.get("model_info") or {}
        where = f"{config.where(f'model_list[{index}]')}: model_list[{index}]"
        for key in PARAMS_ONLY:
            if info.get(key) is not None:
                yield (
                    f"{where}: model_info.{key} is ignored (LiteLLM reads {key} only from "
                    f"litellm_params, and so does ratetree); move it there"
                )
        only_info = [
            key
            for key in ("rpm", "tpm")
            if info.get(key) is not None and entry.get(key) is None and params.get(key) is None
        ]
        if (
            only_info
            and params.get("weight") is None
            and strategies[entry["model_name"]] == "shuffle"
        ):
            keys = " and ".join(f"model_info.{key}" for key in only_info)
            yield (
                f"{where}: ratetree's shuffle weighs this deployment by {keys}, LiteLLM's "
                f"simple-shuffle does not; move it into litellm_params (or set weight) so "
                f"both pick alike"
            )


def _hidden_alias_warnings(spec: TreeSpec) -> Iterator[str]:
    included = {m.group for g in spec.groups for m in g.members if m.group is not None}
    visible: dict[str, list[str]] = {}
    for alias, target in spec.aliases.items():
        if alias not in spec.hidden:
            visible.setdefault(target, []).append(alias)
    members: Mapping[str, int] = {g.name: len(g.members) for g in spec.groups}
    for alias in sorted(spec.hidden):
        target = spec.aliases[alias]
        if target not in included and target not in visible:
            yield (
                f"model_group_alias[{show(alias)}]: hidden alias of {show(target)}, and no other "
                f"group or visible alias reaches {show(target)}: its "
                f"{members[target]} member(s) are reachable only through the hidden "
                f"alias or the bare model_name {show(target)}"
            )


def warnings(config: ConfigFile, spec: TreeSpec) -> list[str]:
    """Entries of a valid config that may not do what they seem to: an empty model_list, an
    entry naming a group that is a deployment because it carries more than routing keys,
    an alias that turns an entry into a reference, a weight LiteLLM reads elsewhere, a
    group that only a hidden alias leads to."""
    empty = [] if spec.groups else [f"{config.name}: the model_list is empty"]
    return [
        *empty,
        *_reference_warnings(config, spec),
        *_weight_warnings(config, spec),
        *_hidden_alias_warnings(spec),
    ]
