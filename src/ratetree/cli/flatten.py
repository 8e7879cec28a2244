"""``ratetree flatten``: the flat model_list plain LiteLLM accepts.

Every group gets one copy of every deployment it reaches, once per path, under the
group's own name. A flat list cannot say two things a composed one does: that the copies
share one budget (each copy gets its own rpm/tpm) and that ``order`` ranks inside each
sub-group. Copies are ranked by the orders along their path, outermost first, which keeps
every ranking inside one sub-group but not the split between sub-groups.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

from ratetree.core.specs import Group, TreeSpec

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


def _copy(entry: Any, group: str, order: int | None, new_id: str | None) -> dict[str, Any]:
    out: dict[str, Any] = copy.deepcopy(dict(entry))
    out["model_name"] = group
    params = out["litellm_params"] = dict(out["litellm_params"])
    info = out.get("model_info")
    if isinstance(info, dict):
        info.pop("order", None)  # litellm_params is where the copy's order is set
    params.pop("order", None)
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


def flat_model_list(spec: TreeSpec) -> list[dict[str, Any]]:
    """One entry per (group, path to a deployment), each a copy of the deployment's
    original entry with ``model_name`` set to the group. An explicit ``model_info.id`` is
    kept on the copy in the group that lists the deployment (the first, if several do) and
    suffixed with ``@group`` (and ``#n`` for repeats) on the others, since LiteLLM keeps
    one deployment per id."""
    groups = {g.name: g for g in spec.groups}
    deployments = {d.id: d for d in spec.deployments}
    used_ids: set[str] = set()
    out: list[dict[str, Any]] = []
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
            entry = deployments[deployment_id].payload
            info = entry.get("model_info")
            new_id = None
            if isinstance(info, dict) and info.get("id") is not None:
                # The id stays on a copy in a group that lists the deployment itself.
                own = len(orders) == 1 and str(info["id"]) not in used_ids
                new_id = _unique(str(info["id"]) + ("" if own else f"@{group.name}"), used_ids)
            out.append(_copy(entry, group.name, ranks[orders], new_id))
    return out


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
