"""Plain graph checks on names, before any state exists: alias chains and group cycles."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ratetree.errors import ConfigError


def resolve_aliases(aliases: Mapping[str, str], groups: Collection[str]) -> dict[str, str]:
    """Map every alias to the group it finally names. Raises ConfigError for an alias that
    shadows a group, leads nowhere, or goes round in a cycle."""
    resolved: dict[str, str] = {}
    for alias in aliases:
        if alias in groups:
            raise ConfigError(f"alias {alias!r} shadows group {alias!r}")
        chain = [alias]
        while chain[-1] in aliases:
            target = aliases[chain[-1]]
            if target in chain:
                cycle = " -> ".join([*chain[chain.index(target) :], target])
                raise ConfigError(f"alias {alias!r} is part of a cycle: {cycle}")
            chain.append(target)
        if chain[-1] not in groups:
            raise ConfigError(f"alias {alias!r} leads to {chain[-1]!r}, which is no group")
        resolved[alias] = chain[-1]
    return resolved


def find_cycle(children: Mapping[str, list[str]]) -> list[str] | None:
    """A cycle among group references as a list of names (first == last), or None."""
    done: set[str] = set()
    for root in children:
        if root in done:
            continue
        path: list[str] = [root]
        on_path = {root}
        stack = [iter(children.get(root, ()))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif child in on_path:
                return [*path[path.index(child) :], child]
            elif child not in done:
                path.append(child)
                on_path.add(child)
                stack.append(iter(children.get(child, ())))
    return None
