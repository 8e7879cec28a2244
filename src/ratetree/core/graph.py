"""Plain graph checks on names, before any state exists: alias chains and group cycles."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from ratetree.core.validate import clip, show
from ratetree.errors import ConfigError

#: The most groups one chain of references may pass through, root group included. Deeper
#: trees are refused at load, so no walk of the tree can run out of stack.
MAX_DEPTH = 100


def resolve_aliases(aliases: Mapping[str, str], groups: Collection[str]) -> dict[str, str]:
    """Map every alias to the group it finally names, in time linear in the aliases.
    Raises ConfigError for an alias that shadows a group, leads nowhere, or goes round
    in a cycle."""
    resolved: dict[str, str] = {}
    for alias in aliases:
        if alias in groups:
            raise ConfigError(f"alias {show(alias)} shadows group {show(alias)}")
        # Follow the chain until a group or an alias already resolved; every alias on the
        # way then resolves to the same end, so each alias is walked once in all.
        chain: list[str] = []
        on_chain: set[str] = set()
        name = alias
        while name in aliases and name not in resolved:
            if name in on_chain:
                cycle = " -> ".join([*chain[chain.index(name) :], name])
                raise ConfigError(f"alias {show(alias)} is part of a cycle: {clip(cycle)}")
            chain.append(name)
            on_chain.add(name)
            name = aliases[name]
        end = resolved.get(name, name)
        if end not in groups:
            raise ConfigError(f"alias {show(alias)} leads to {show(end)}, which is no group")
        for link in chain:
            resolved[link] = end
    return {alias: resolved[alias] for alias in aliases}


def check_depth(children: Mapping[str, list[str]]) -> None:
    """Raise ConfigError if a chain of group references (acyclic: see :func:`find_cycle`)
    passes through more than MAX_DEPTH groups."""
    depth: dict[str, int] = {}  # groups in the longest chain starting at each group
    for root in children:
        stack = [root]
        while stack:
            name = stack[-1]
            if name in depth:
                stack.pop()
                continue
            pending = [c for c in children.get(name, ()) if c not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[name] = 1 + max((depth[c] for c in children.get(name, ())), default=0)
            if depth[name] > MAX_DEPTH:
                raise ConfigError(
                    f"group {show(name)} starts a chain of more than {MAX_DEPTH} nested "
                    f"groups; the limit is {MAX_DEPTH} levels"
                )


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
