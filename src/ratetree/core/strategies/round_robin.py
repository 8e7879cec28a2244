"""Smooth weighted round-robin for one tier, as WF2Q+ schedules packets.

Among members whose virtual start time has come, the one with the earliest virtual finish
time goes next; virtual time advances by ``1 / total_weight`` a pick. With ample capacity
each member's count stays within one pick of its exact share ``picks * weight / total``.
A member that was closed rejoins at the current virtual time instead of claiming the turns
it missed.

While every member is open (the common case) the picks repeat with a period of
``total_weight`` when weights are whole numbers, so that period is computed once, exactly,
and replayed with a cursor. When a member closes, the heaps are rebuilt from the counts
the cursor has made, and serve until every member is open again.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Sequence
from fractions import Fraction

from ratetree.core.gates import Reference
from ratetree.core.strategies.base import Tier, compact

# A longer period is not worth its memory; such tiers always use the heaps.
MAX_PERIOD = 1 << 16


def wf2q_period(weights: Sequence[int]) -> list[int]:
    """One period of WF2Q+ picks (member indexes) from a fresh start, in exact arithmetic.

    Ties on finish time go to the lower index, as in the heaps.
    """
    total = sum(weights)
    counts = [0] * len(weights)
    eligible = [(Fraction(1, w), i) for i, w in enumerate(weights) if w]  # (finish, i)
    heapq.heapify(eligible)
    waiting: list[tuple[Fraction, int]] = []  # (start, i)
    picks: list[int] = []
    for n in range(total):
        vtime = Fraction(n, total)
        while waiting and waiting[0][0] <= vtime:
            _, i = heapq.heappop(waiting)
            heapq.heappush(eligible, (Fraction(counts[i] + 1, weights[i]), i))
        _, best = heapq.heappop(eligible)
        counts[best] += 1
        picks.append(best)
        heapq.heappush(waiting, (Fraction(counts[best], weights[best]), best))
    return picks


def _period_for(weights: Sequence[float]) -> list[int]:
    """The replayable period for these weights, or [] when they are not whole numbers or
    the period would be too long. Weights are divided by their common divisor first:
    rpm-derived weights such as 600 and 900 repeat every 5 picks, not every 1,500."""
    if not all(w == int(w) for w in weights):
        return []
    whole = [int(w) for w in weights]
    divisor = math.gcd(*whole)
    if not divisor or sum(whole) // divisor > MAX_PERIOD:
        return []
    return wf2q_period([w // divisor for w in whole])


class RoundRobinTier(Tier):
    """WF2Q+ over the open members; see the module docstring. Per member (by ``index``):
    its virtual start and finish times and a version; a heap entry is live only while its
    version matches the member's."""

    __slots__ = (
        "_base",
        "_cursor",
        "_eligible",
        "_finish",
        "_period",
        "_period_size",
        "_replaying",
        "_start",
        "_version",
        "_vtime",
        "_waiting",
        "_weight",
    )
    charges = True

    def __init__(self, order: int | None, edges: Sequence[Reference]) -> None:
        super().__init__(order, edges)
        self._vtime = 0.0
        self._weight = 0.0
        self._eligible: list[tuple[float, int, int]] = []  # (finish, index, version)
        self._waiting: list[tuple[float, int, int]] = []  # (start, index, version)
        self._start = [0.0] * len(self.edges)
        self._finish = [0.0] * len(self.edges)
        self._version = [0] * len(self.edges)
        self._period = _period_for([e.weight for e in self.edges])
        self._period_size = len(self._period)  # read on every charge while replaying
        self._replaying = False
        self._cursor = 0
        self._base = 0.0  # virtual time at the start of the current period

    def start_of(self, edge: Reference) -> float:
        """The member's virtual start time (for tests and introspection)."""
        return self._start[edge.index]

    # -- replay while everybody is open ------------------------------------------------

    def _start_replay(self) -> None:
        self._replaying = True
        self._base = self._vtime
        self._cursor = 0

    def _stop_replay(self) -> None:
        """Turn the cursor's position back into per-member virtual times and heaps."""
        self._replaying = False
        self._vtime = self._base + self._cursor / self._weight
        self._eligible.clear()
        self._waiting.clear()
        # Picks per member so far in this period: while replaying, every charge is of the
        # member the cursor names (``pick`` returns it and nothing else is charged), so
        # they are counted here, once, rather than on every charge.
        counts = [0] * len(self.edges)
        for index in self._period[: self._cursor]:
            counts[index] += 1
        for edge, count in zip(self.edges, counts, strict=True):
            if edge.weight:
                i = edge.index
                self._start[i] = self._base + count / edge.weight
                self._finish[i] = self._start[i] + 1.0 / edge.weight
                self._push(edge)

    # -- membership ------------------------------------------------------------------

    def add(self, edge: Reference, *, rejoin: bool = True) -> None:
        super().add(edge)
        if not edge.weight:
            return
        self._weight += edge.weight
        if rejoin:
            i = edge.index
            if self._start[i] < self._vtime:
                self._start[i] = self._vtime
            self._finish[i] = self._start[i] + 1.0 / edge.weight
        self._push(edge)

    def readd(self, edge: Reference) -> None:
        self.add(edge, rejoin=False)

    def remove(self, edge: Reference) -> None:
        if self._replaying:
            self._stop_replay()
        super().remove(edge)
        if edge.weight:
            self._weight -= edge.weight
            self._version[edge.index] += 1

    def _push(self, edge: Reference) -> None:
        i = edge.index
        self._version[i] += 1
        if self._start[i] <= self._vtime * (1 + 1e-12):
            heapq.heappush(self._eligible, (self._finish[i], i, self._version[i]))
            compact(self._eligible, self._version)
        else:
            heapq.heappush(self._waiting, (self._start[i], i, self._version[i]))
            compact(self._waiting, self._version)

    # -- choosing --------------------------------------------------------------------

    def pick(self, rng: random.Random, now: float) -> Reference | None:
        if self._replaying:
            return self.edges[self._period[self._cursor]]
        if self._period and len(self.open) == len(self.edges):
            self._start_replay()
            return self.edges[self._period[0]]
        eligible, waiting, versions = self._eligible, self._waiting, self._version
        pop, push = heapq.heappop, heapq.heappush
        while eligible and versions[eligible[0][1]] != eligible[0][2]:
            pop(eligible)  # dead entry
        limit = self._vtime * (1 + 1e-12)
        while waiting:
            start, index, version = waiting[0]
            if versions[index] != version:
                pop(waiting)
                continue
            if start > limit:
                if eligible:
                    break
                # Nobody is eligible: virtual time jumps to the earliest start (WF2Q+).
                self._vtime = start
                limit = start * (1 + 1e-12)
            pop(waiting)
            push(eligible, (self._finish[index], index, version))
        if not eligible:
            return self._zero_weight_pick(rng)
        return self.edges[eligible[0][1]]

    def charge(self, edge: Reference) -> None:
        if self._replaying:  # the member the cursor names: see _stop_replay
            self._cursor += 1
            if self._cursor == self._period_size:
                self._start_replay_at(self._base + self._period_size / self._weight)
            return
        if not edge.weight:
            return
        i = edge.index
        self._vtime += 1.0 / self._weight
        eligible, versions = self._eligible, self._version
        picked = bool(eligible) and eligible[0][1] == i and eligible[0][2] == versions[i]
        start = self._start[i] = self._finish[i]
        finish = self._finish[i] = start + 1.0 / edge.weight
        if picked and start <= self._vtime * (1 + 1e-12):
            # Usually the member just picked is still on top: replace its entry in place
            # rather than leave a dead one behind.
            versions[i] += 1
            heapq.heapreplace(eligible, (finish, i, versions[i]))
            return
        if picked:
            heapq.heappop(eligible)
        self._push(edge)

    def _start_replay_at(self, base: float) -> None:
        # A full period gives every member picks in proportion to its weight, which moves
        # every virtual time on by the same amount, period / total weight: the next period
        # starts where this one started, plus that.
        self._vtime = base
        self._start_replay()
