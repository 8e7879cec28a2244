"""A plain reference model of a ratetree scheduler, written from the semantics, not the code.

Brute force throughout: every path from a group is enumerated, every gate on it is checked,
and buckets keep a level (units) that is brought forward by ``rate * elapsed`` on each read.
Nothing is cached or indexed, so the model is slow and easy to check by eye.

Vocabulary:

- a *path* from a requested group G is the tuple of node names ``(G, child, ..., dep)``;
  trees from ``strategies.py`` never reference one target twice from one group, so the
  names also fix the member reference taken at every step;
- the *gates* of a path are every node on it (G included, G's ancestors not) and every
  member reference between consecutive nodes. A gate key is ``("group", name)``,
  ``("deployment", id)`` or ``("reference", parent, child)``;
- a node reached along several paths has one state: gates are keyed by name, not by path;
- aliases are resolved up front: paths and gates use group names only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import pairwise

from strategies import LimitsModel, TreeModel

INF = math.inf
TOL = 1e-9  # a request fits at t if the moment it fits is at most t + TOL
FAILURE_WINDOW = 60.0

GateKey = tuple[str, ...]
Path = tuple[str, ...]


class OracleBucket:
    """Token bucket by level: capacity ``amount``, refills ``amount / period`` per second,
    starts full, may go negative only through :meth:`charge`."""

    def __init__(self, kind: str, amount: float, period: float, start: float) -> None:
        self.kind = kind
        self.capacity = amount
        self.period = period
        self.rate = amount / period
        self._level = amount
        self._stamp = start
        self.charged = False  # has a settle ever charged extra (so debt is allowed)?
        self.admissions: list[tuple[float, float]] = []  # (time, units) taken by acquire

    def level(self, t: float) -> float:
        return min(self.capacity, self._level + (t - self._stamp) * self.rate)

    def _set(self, level: float, t: float) -> None:
        self._level = level
        self._stamp = t

    def wait(self, units: float, t: float) -> float:
        """Seconds from ``t`` until ``units`` fit (<= 0 when they fit now); INF if never."""
        if units > self.capacity:
            return INF
        return (units - self.level(t)) / self.rate

    def fits(self, units: float, t: float) -> bool:
        return self.wait(units, t) <= TOL

    def take(self, units: float, t: float) -> None:
        self.admissions.append((t, units))
        self._set(self.level(t) - units, t)

    def charge(self, units: float, t: float) -> None:
        self.charged = True
        self._set(self.level(t) - units, t)

    def refund(self, units: float, t: float) -> None:
        self._set(min(self.capacity, self.level(t) + units), t)


@dataclass
class OracleGate:
    key: GateKey
    rpm: list[OracleBucket]
    tpm: list[OracleBucket]
    max_parallel: int | None
    in_flight: int = 0
    cooling_until: float = -INF
    failures: list[float] = field(default_factory=list)

    @property
    def buckets(self) -> list[OracleBucket]:
        return self.rpm + self.tpm

    def admits(self, tokens: float, t: float) -> bool:
        if self.max_parallel is not None and self.in_flight >= self.max_parallel:
            return False
        if self.cooling_until > t + TOL:
            return False
        return all(b.fits(1, t) for b in self.rpm) and all(b.fits(tokens, t) for b in self.tpm)

    def ready_time(self, tokens: float, t: float) -> float:
        """The moment this gate alone lets the request through if nothing else happens."""
        if self.max_parallel is not None and self.in_flight >= self.max_parallel:
            return INF
        moment = max(t, self.cooling_until)
        for b in self.rpm:
            moment = max(moment, t + b.wait(1, t))
        for b in self.tpm:
            moment = max(moment, t + b.wait(tokens, t))
        return moment


def _gate(key: GateKey, limits: LimitsModel, start: float) -> OracleGate:
    return OracleGate(
        key=key,
        rpm=[OracleBucket("rpm", r.amount, r.period, start) for r in limits.rpm],
        tpm=[OracleBucket("tpm", r.amount, r.period, start) for r in limits.tpm],
        max_parallel=limits.max_parallel,
    )


def _tier_key(order: int | None) -> tuple[bool, int]:
    return (order is None, order or 0)


class Oracle:
    def __init__(
        self, model: TreeModel, *, start: float, allowed_fails: int, cooldown_time: float
    ) -> None:
        self.model = model
        self.allowed_fails = allowed_fails
        self.cooldown_time = cooldown_time
        self.kind: dict[str, str] = {}
        self.gates: dict[GateKey, OracleGate] = {}
        self.members: dict[str, dict[str, int | None]] = {}  # group -> child -> order
        for d in model.deployments:
            self.kind[d.id] = "deployment"
            self.gates[("deployment", d.id)] = _gate(("deployment", d.id), d.limits, start)
        for g in model.groups:
            self.kind[g.name] = "group"
            self.gates[("group", g.name)] = _gate(("group", g.name), g.limits, start)
            self.members[g.name] = {}
            for m in g.members:
                child = model.resolve(m.target) if m.kind == "group" else m.target
                key = ("reference", g.name, child)
                self.gates[key] = _gate(key, m.limits, start)
                self.members[g.name][child] = m.order

    # ----------------------------------------------------------------- structure

    def candidates(self, group: str, tokens: float, t: float) -> set[str]:
        """Deployments at the end of some admissible, tier-respecting path."""
        return {
            p[-1]
            for p in self.admissible_paths(group, tokens, t)
            if not self.tier_violations(p, tokens, t)
        }

    def node_gate(self, name: str) -> OracleGate:
        return self.gates[(self.kind[name], name)]

    def paths(self, node: str) -> list[Path]:
        """Every path from ``node`` down to a deployment."""
        if self.kind[node] == "deployment":
            return [(node,)]
        return [(node, *rest) for child in self.members[node] for rest in self.paths(child)]

    def gates_on(self, path: Path) -> list[OracleGate]:
        out = [self.node_gate(n) for n in path]
        out += [self.gates[("reference", a, b)] for a, b in pairwise(path)]
        return out

    def max_tokens(self, group: str) -> float:
        """The largest token count some path from ``group`` could ever hold."""
        return max(
            min((b.capacity for gate in self.gates_on(p) for b in gate.tpm), default=INF)
            for p in self.paths(group)
        )

    # ----------------------------------------------------------------- admission

    def path_admits(self, path: Path, tokens: float, t: float) -> bool:
        return all(gate.admits(tokens, t) for gate in self.gates_on(path))

    def admissible_paths(self, group: str, tokens: float, t: float) -> list[Path]:
        return [p for p in self.paths(group) if self.path_admits(p, tokens, t)]

    def continuation_admits(self, group: str, child: str, tokens: float, t: float) -> bool:
        """Whether the member reference ``group -> child`` and some path below admit."""
        if not self.gates[("reference", group, child)].admits(tokens, t):
            return False
        return any(self.path_admits(p, tokens, t) for p in self.paths(child))

    def tier_violations(self, path: Path, tokens: float, t: float) -> list[str]:
        """Groups on ``path`` where an earlier tier than the chosen member's could admit."""
        out = []
        for group, chosen in pairwise(path):
            chosen_tier = _tier_key(self.members[group][chosen])
            for other, order in self.members[group].items():
                if _tier_key(order) < chosen_tier and self.continuation_admits(
                    group, other, tokens, t
                ):
                    out.append(f"in {group}: took {chosen} while earlier tier {other} admits")
        return out

    def earliest(self, group: str, tokens: float, t: float) -> float:
        """min over paths of the max over the path's gates of each gate's ready time."""
        return min(
            max(gate.ready_time(tokens, t) for gate in self.gates_on(p)) for p in self.paths(group)
        )

    def retry_after(self, group: str, tokens: float, t: float) -> float | None:
        moment = self.earliest(group, tokens, t)
        return None if moment == INF else moment - t

    def is_open(self, key: GateKey, t: float) -> bool:
        """Whether a minimal request (one request, zero tokens) could pass this gate now and
        go on to some deployment below it."""
        if key[0] == "reference":
            return self.continuation_admits(key[1], key[2], 0, t)
        return bool(self.admissible_paths(key[1], 0, t))

    def next_events(self, t: float) -> list[float]:
        """Positive delays after which some gate's readiness for a small request changes."""
        out = set()
        for gate in self.gates.values():
            if gate.cooling_until > t:
                out.add(gate.cooling_until - t)
            for b in gate.rpm:
                w = b.wait(1, t)
                if w > 0:
                    out.add(w)
            for b in gate.tpm:
                w = b.wait(0, t)
                if w > 0:
                    out.add(w)
                w = b.wait(b.capacity, t)
                if w > 0:
                    out.add(w)
        return sorted(out)

    # ----------------------------------------------------------------- effects

    def commit(self, path: Path, tokens: float, t: float) -> None:
        for gate in self.gates_on(path):
            for b in gate.rpm:
                b.take(1, t)
            for b in gate.tpm:
                b.take(tokens, t)
            gate.in_flight += 1

    def settle(self, path: Path, reserved: float, actual: float | None, t: float) -> None:
        for gate in self.gates_on(path):
            gate.in_flight -= 1
            if actual is None:
                continue
            for b in gate.tpm:
                if actual > reserved:
                    b.charge(actual - reserved, t)
                elif actual < reserved:
                    b.refund(reserved - actual, t)

    def fail(
        self, path: Path, reserved: float, retry_after: float | None, tokens: float, t: float
    ) -> None:
        self.settle(path, reserved, tokens, t)
        dep = self.node_gate(path[-1])
        if retry_after is not None:
            dep.cooling_until = max(dep.cooling_until, t + retry_after)
            return
        dep.failures.append(t)
        recent = [f for f in dep.failures if not f <= t - FAILURE_WINDOW]
        if len(recent) > self.allowed_fails:
            dep.cooling_until = max(dep.cooling_until, t + self.cooldown_time)

    # ----------------------------------------------------------------- checks

    def all_buckets(self) -> Iterable[tuple[OracleGate, OracleBucket]]:
        for gate in self.gates.values():
            for b in gate.buckets:
                yield gate, b


def window_overruns(bucket: OracleBucket, slack: float = 1e-6) -> list[str]:
    """Intervals in which acquire took more than ``capacity + rate * length`` units.

    Only meaningful for buckets no settle ever refunded into (rpm buckets), since a refund
    legitimately lets more reservations through.
    """
    adm = bucket.admissions
    out = []
    for i in range(len(adm)):
        total = 0.0
        for j in range(i, len(adm)):
            total += adm[j][1]
            allowed = bucket.capacity + bucket.rate * (adm[j][0] - adm[i][0])
            if total > allowed + slack * max(1.0, bucket.capacity):
                out.append(
                    f"{total:g} units in [{adm[i][0]!r}, {adm[j][0]!r}] > allowed {allowed:g}"
                )
    return out
