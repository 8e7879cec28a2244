"""What a LiteLLM Router is built from so that it reports the tree: every group is a model
group of the Router, listing every deployment it reaches, under the deployment's ratetree id.

Plain data (no LiteLLM import): the spec's groups and deployments in, a ``model_list`` and a
``model_group_alias`` out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ratetree.core.build import wildcard_patterns
from ratetree.core.specs import TreeSpec
from ratetree.errors import ConfigError

# LiteLLM reads ``order`` as a filter ahead of any strategy (only the lowest order present
# passes); ratetree applies orders itself, so the Router must not narrow the candidates by it.
_ROUTER_DROPS = ("order",)


def plain_copy(value: Any) -> Any:
    """A copy of the dicts and lists in ``value``; everything else (an exception given as
    ``mock_response``, a callable, a client) is kept as the same object, which a deep copy
    may not be able to copy at all."""
    if isinstance(value, Mapping):
        return {key: plain_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain_copy(item) for item in value]
    return value


class RouterView:
    """A spec seen as a Router's model_list.

    ``reach[group]`` is the set of deployment ids a group reaches; ``home[id]`` is the group
    that lists the deployment itself (the first such group). Raises ConfigError when a
    deployment carries no LiteLLM model_list entry.
    """

    __slots__ = ("_entries", "_members", "aliases", "home", "patterns", "reach", "resolve")

    def __init__(self, spec: TreeSpec) -> None:
        base: dict[str, dict[str, Any]] = {}
        for deployment in spec.deployments:
            entry = deployment.payload
            if not isinstance(entry, Mapping):
                raise ConfigError(
                    f"deployment {deployment.id!r} carries no model_list entry; build the "
                    "scheduler with Scheduler.from_litellm"
                )
            params = entry.get("litellm_params")
            info = entry.get("model_info")
            base[deployment.id] = {
                "litellm_params": {
                    k: v
                    for k, v in (params if isinstance(params, Mapping) else {}).items()
                    if k not in _ROUTER_DROPS
                },
                "model_info": {**(info if isinstance(info, Mapping) else {}), "id": deployment.id},
            }
        groups = {group.name: group for group in spec.groups}
        self.home: dict[str, str] = {}
        for group in spec.groups:
            for member in group.members:
                if member.deployment is not None:
                    self.home.setdefault(member.deployment, group.name)
        reach: dict[str, frozenset[str]] = {}

        def reached(name: str) -> frozenset[str]:  # a valid spec has no cycles
            if name not in reach:
                found: set[str] = set()
                for member in groups[name].members:
                    if member.deployment is not None:
                        found.add(member.deployment)
                    elif member.group is not None:
                        found |= reached(member.group)
                reach[name] = frozenset(found)
            return reach[name]

        for name in groups:
            reached(name)
        self.reach = reach
        self._members: dict[str, list[tuple[str | None, str | None]]] = {
            name: [(m.deployment, m.group) for m in group.members] for name, group in groups.items()
        }
        # Each group lists its deployments in the spec's order, so the Router's lists are stable.
        order = {deployment.id: i for i, deployment in enumerate(spec.deployments)}
        self._entries: dict[tuple[str, str], dict[str, Any]] = {
            (name, deployment_id): {"model_name": name, **base[deployment_id]}
            for name in groups
            for deployment_id in sorted(reach[name], key=order.__getitem__)
        }
        self.resolve: dict[str, str] = {name: name for name in groups}
        self.patterns = wildcard_patterns(groups)
        self.aliases: dict[str, Any] = {}
        for alias, target in spec.aliases.items():
            while target in spec.aliases:  # a valid spec's alias chains end at a group
                target = spec.aliases[target]
            self.resolve[alias] = target
            self.aliases[alias] = (
                {"model": target, "hidden": True} if alias in spec.hidden else target
            )

    def match(self, requested: str) -> tuple[str, tuple[str, ...]] | None:
        """The wildcard group (``openai/*``) a name no group or alias has falls to, as
        LiteLLM's pattern router picks it, with the parts its ``*`` matched; or None."""
        for regex, name in self.patterns:
            found = regex.match(requested)
            if found is not None:
                return name, found.groups()
        return None

    def alone(self, group: str) -> bool:
        """Whether ``group`` (or the group an alias names) reaches exactly one deployment."""
        return len(self.reach.get(self.resolve.get(group, group), frozenset())) == 1

    def route(self, requested: str, deployment_id: str) -> tuple[str, ...] | None:
        """The groups from ``requested`` (a group, alias, wildcard-matched name or deployment
        id) down to ``deployment_id``, then the id: the path a lease on it takes, the first in
        member order when a group reaches the deployment through several. None if none."""
        if requested in self.home:
            requested = self.home[requested]
        elif requested not in self.resolve and (matched := self.match(requested)) is not None:
            requested = matched[0]
        group = self.resolve.get(requested)
        if group is None or deployment_id not in self.reach[group]:
            return None
        path = [group]
        while (deployment_id, None) not in self._members[group]:
            group = next(
                sub
                for _, sub in self._members[group]
                if sub is not None and deployment_id in self.reach[sub]
            )
            path.append(group)
        return (*path, deployment_id)

    @property
    def model_list(self) -> list[dict[str, Any]]:
        """A fresh list of fresh entries, groups in the spec's order."""
        return [plain_copy(entry) for entry in self._entries.values()]

    def entry(
        self, group: str, deployment_id: str, requested: str | None = None
    ) -> dict[str, Any] | None:
        """A fresh copy of the entry the Router serves ``deployment_id`` under for a request
        to ``group`` (a group or alias), or None if the group does not reach it. When a
        wildcard group took the ``requested`` name, the copy calls the model asked for."""
        name = self.resolve.get(group, group)
        found = self._entries.get((name, deployment_id))
        if found is None:
            return None
        entry: dict[str, Any] = plain_copy(found)
        if requested is not None and requested != name and "*" in name:
            matched = self.match(requested)
            if matched is not None and matched[0] == name:
                fill_wildcards(entry, matched[1])
        return entry


def fill_wildcards(entry: dict[str, Any], parts: tuple[str, ...]) -> dict[str, Any]:
    """``entry`` (a fresh copy) calling the model a wildcard request asked for: each ``*``
    of its ``litellm_params.model`` takes the next part the group's ``*`` matched, as
    LiteLLM's ``PatternMatchRouter.set_deployment_model_name`` does."""
    params = entry.get("litellm_params")
    model = params.get("model") if isinstance(params, dict) else None
    if isinstance(params, dict) and isinstance(model, str) and "*" in model and parts:
        pieces = model.split("*")
        filled = pieces[0]
        for i, piece in enumerate(pieces[1:]):
            filled += parts[min(i, len(parts) - 1)] + piece
        params["model"] = filled
    return entry
