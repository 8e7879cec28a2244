"""``ratetree flatten``: the flat model_list plain LiteLLM accepts.

Every group gets one copy of every deployment it reaches, once per path, under the
group's own name. A flat list cannot say two things a composed one does: that the copies
share one budget (each copy gets its own rpm/tpm) and that ``order`` ranks inside each
sub-group. Copies are ranked by the orders along their path, outermost first, which keeps
every ranking inside one sub-group but not the split between sub-groups.

A copy carries only what plain LiteLLM accepts: its rpm, tpm and max_parallel_requests
as integers in ``litellm_params`` (LiteLLM's Router refuses ``rpm: "30/minute"``, and
LiteLLM 1.110's refuses ``max_parallel_requests: "4"``). A rate that is no whole number
per minute is written rounded down, with a warning.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping
from typing import Any

from ratetree.cli.config_file import ConfigFile
from ratetree.config.values import plain_limits, plain_rate, whole_per_minute
from ratetree.core.specs import Deployment, Group, TreeSpec

_Path = tuple[tuple[int | None, ...], str]  # (orders from the group down, deployment id)


def _paths(group: Group, groups: dict[str, Group]) -> Iterator[_Path]:
    for member in group.members:
        if member.deployment is not None:
            yield (member.order,), member.deployment
        else:
            for orders, deployment in _paths(groups[member.target], groups):
                yield (member.order, *orders), deployment


def _rank_key(orders: tuple[int | None, ...]) -> tuple[float, ...]:
    # Unordered members come after every ordered one, as in LiteLLM.
    return tuple(math.inf if o is None else o for o in orders)


def inexpressible(spec: TreeSpec) -> list[str]:
    """One line per deployment rate that no integer rpm or tpm says exactly."""
    lines = []
    for d in spec.deployments:
        for key, rates in (("rpm", d.limits.rpm), ("tpm", d.limits.tpm)):
            if rates and whole_per_minute(rates) is None:
                lines.append(
                    f"deployment {d.label or d.id!r} [id {d.id}]: {key} "
                    f"{'; '.join(map(str, rates))} is no whole number per minute; the flat "
                    f"config says {key} {plain_rate(rates)}"
                )
    return lines


def _copy(
    deployment: Deployment, group: str, order: int | None, new_id: str | None
) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(dict(deployment.payload))
    out["model_name"] = group
    params = out["litellm_params"] = dict(out["litellm_params"])
    info = out.get("model_info")
    # litellm_params is where the copy's order and limits are set, each once.
    for key in ("rpm", "tpm"):
        out.pop(key, None)
    for key in ("order", "rpm", "tpm", "max_parallel_requests"):
        params.pop(key, None)
        if isinstance(info, dict):
            info.pop(key, None)
    params.update(plain_limits(deployment.limits))
    if order is not None:
        params["order"] = order
    if new_id is not None:
        assert isinstance(info, dict)
        info["id"] = new_id
    return out


def _unique(wanted: str, used: set[str]) -> str:
    """``wanted``, or ``wanted#2``, ``wanted#3``... whichever is not in ``used`` yet."""
    candidate, count = wanted, 1
    while candidate in used:
        count += 1
        candidate = f"{wanted}#{count}"
    used.add(candidate)
    return candidate


def _ranked_paths(
    spec: TreeSpec,
) -> Iterator[tuple[Group, tuple[int | None, ...], str, int | None]]:
    """(group, orders along the path, deployment id, the copy's order) for every path."""
    groups = {g.name: g for g in spec.groups}
    for group in spec.groups:
        paths = list(_paths(group, groups))
        if all(len(orders) == 1 for orders, _ in paths):
            ranks = {orders: orders[0] for orders, _ in paths}  # no references: keep as is
        else:
            keys = sorted({_rank_key(o) for o, _ in paths if any(x is not None for x in o)})
            ranks = {
                o: keys.index(_rank_key(o)) + 1 if any(x is not None for x in o) else None
                for o, _ in paths
            }
        for orders, deployment_id in paths:
            yield group, orders, deployment_id, ranks[orders]


def flat_model_list(spec: TreeSpec) -> list[dict[str, Any]]:
    """One entry per (group, path to a deployment), each a copy of the deployment's
    original entry with ``model_name`` set to the group and its limits as integers in
    ``litellm_params``. An explicit ``model_info.id`` is kept on the copy in the group
    that lists the deployment (the first, if several do) and suffixed with ``@group`` (and
    ``#n`` for repeats) on the others, since LiteLLM keeps one deployment per id."""
    deployments = {d.id: d for d in spec.deployments}
    used_ids: set[str] = set()
    out: list[dict[str, Any]] = []
    for group, orders, deployment_id, rank in _ranked_paths(spec):
        deployment = deployments[deployment_id]
        info = deployment.payload.get("model_info")
        new_id = None
        if isinstance(info, dict) and info.get("id") is not None:
            # The id stays on a copy in a group that lists the deployment itself.
            own = len(orders) == 1 and str(info["id"]) not in used_ids
            new_id = _unique(str(info["id"]) + ("" if own else f"@{group.name}"), used_ids)
        out.append(_copy(deployment, group.name, rank, new_id))
    return out


def copied(spec: TreeSpec) -> int:
    """How many flat entries copy a deployment that has more than one: the copies that
    get a budget each instead of one shared budget (0 when nothing was copied)."""
    counts: dict[str, int] = {}
    for _, _, deployment_id, _ in _ranked_paths(spec):
        counts[deployment_id] = counts.get(deployment_id, 0) + 1
    return sum(n for n in counts.values() if n > 1)


def limited_references(spec: TreeSpec) -> list[str]:
    """A description of every group limit and limited reference, which a flat list has
    no place for."""
    dropped = [f"group {g.name!r} ({g.limits.describe()})" for g in spec.groups if g.limits]
    dropped += [
        f"reference {g.name!r} -> {m.target!r} ({m.limits.describe()})"
        for g in spec.groups
        for m in g.members
        if m.group is not None and m.limits
    ]
    return dropped


def flatten_warnings(config: ConfigFile, spec: TreeSpec) -> list[str]:
    """What the flat config of ``spec`` (read from ``config``) cannot say."""
    out = []
    copies = copied(spec)
    if copies:
        out.append(
            f"each of the {copies} copies gets its own rpm/tpm budget, so a provider reached "
            f"through several groups can get more than its limits; order is ranked along "
            f"each path, not inside each sub-group"
        )
    out += inexpressible(spec)
    out += [f"the flat config has no place for the limits of {d}" for d in limited_references(spec)]
    default = config.routing_strategy or "simple-shuffle"
    strategies = config.group_strategies if isinstance(config.group_strategies, Mapping) else {}
    out += [
        f"group {name!r} uses routing_strategy {value!r}; the flat config has one for every "
        f"group ({default})"
        for name, value in strategies.items()
        if value != default
    ]
    return out
