"""One order tier of one group: the base class every strategy derives from, which keeps
the list of open members, and the loader that turns a registered name into its class.

A tier only ever sees its *open* members (``add``/``remove`` are called when a member's
open flag changes, and around a selection that had to pass a member over), so a pick
costs O(1) or O(log n) however many members are exhausted.

A strategy keeps whatever it needs per member either in the member's ``slot`` (an object
of the strategy's own class: least-busy, and ``Levels`` for the strategies ranking by a
number) or in lists indexed by ``Reference.index``, the member's position in its tier
(round-robin, whose heaps hold indexes), so references carry no strategy's fields.
"""

from __future__ import annotations

import functools
import heapq
import importlib
import random
from collections.abc import Mapping, Sequence
from typing import ClassVar

from ratetree.core.gates import GroupState, Reference
from ratetree.core.strategies import REGISTRY
from ratetree.core.validate import show
from ratetree.errors import ConfigError


class Tier:
    """Members of one group that share an ``order``; keeps the list of open ones."""

    __slots__ = ("edges", "open", "order")
    #: whether ``charge`` does anything, so the selector can skip calling it
    charges = False
    #: the ``strategy_args`` keys this strategy reads; any other key is a ConfigError
    ARGS: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        self.order = order
        self.edges = list(edges)
        self.open: list[Reference] = []
        for i, edge in enumerate(self.edges):
            edge.index = i
            edge.tier = self

    @classmethod
    def check_args(cls, args: Mapping[str, object], where: str) -> None:
        """Reject ``strategy_args`` keys this strategy does not read. Subclasses that read
        some also check their values (calling ``reject_unknown`` rather than
        ``super().check_args``: a compiled classmethod reached through super() is handed
        the wrong class). Raises ConfigError naming ``where``."""
        reject_unknown(cls.ARGS, args, where)

    def attach(self, owner: GroupState, args: Mapping[str, object]) -> None:
        """Wire this tier into the tree before its members are added: called once by the
        builder, with the owning group (whose lower groups are complete) and its checked
        ``strategy_args``. A strategy that ranks by other gates' state registers its
        members as their watchers here."""

    def add(self, edge: Reference) -> None:
        edge.open_pos = len(self.open)
        self.open.append(edge)

    def remove(self, edge: Reference) -> None:
        # Swap-remove keeps removal O(1); order in ``open`` carries no meaning.
        pos = edge.open_pos
        last = self.open.pop()
        if last is not edge:
            self.open[pos] = last
            last.open_pos = pos
        edge.open_pos = -1

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        """The member the strategy would choose among the open ones, or None."""
        raise NotImplementedError

    def readd(self, edge: Reference) -> None:
        """Put back a member that one selection passed over."""
        self.add(edge)

    def charge(self, edge: Reference) -> None:
        """``edge`` was chosen and admitted: account for it (round-robin only)."""

    def update(self, edge: Reference) -> None:
        """A gate this member's rank depends on has changed (least-busy, usage-based)."""

    def _zero_weight_pick(self, rng: random.Random) -> Reference | None:
        # Members that lack the tier's weight key weigh 0: they serve only when no
        # weighted member can, so the group stays work-conserving.
        open_ = self.open
        return open_[int(rng.random() * len(open_))] if open_ else None


def reject_unknown(accepted: frozenset[str], args: Mapping[str, object], where: str) -> None:
    """Raise ConfigError naming ``where`` for a ``strategy_args`` key not in ``accepted``."""
    unknown = sorted(set(args) - accepted)
    if unknown:
        names = ", ".join(sorted(accepted)) or "none"
        raise ConfigError(
            f"{where}: unknown strategy_args {', '.join(map(show, unknown))} (accepted: {names})"
        )


@functools.cache
def tier_class(name: str) -> type[Tier]:
    """The Tier subclass registered as ``name``. Raises ConfigError for an unknown name."""
    path = REGISTRY.get(name)
    if path is None:
        raise ConfigError(f"strategy {show(name)} is not one of {', '.join(REGISTRY)}")
    module, _, attr = path.partition(":")
    found = getattr(importlib.import_module(module), attr)
    if not (isinstance(found, type) and issubclass(found, Tier)):  # pragma: no cover
        raise ConfigError(f"strategy {name!r} is registered as {path!r}, not a Tier")
    return found


def compact(heap: list[tuple[float, int, int]], versions: list[int]) -> None:
    """Drop dead entries (``(key, index, version)`` whose version is no longer the
    member's) once they outnumber the live ones, so a lazy heap stays small."""
    if len(heap) > 4 * len(versions) + 64:
        heap[:] = [entry for entry in heap if versions[entry[1]] == entry[2]]
        heapq.heapify(heap)
