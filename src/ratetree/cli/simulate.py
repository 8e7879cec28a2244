"""Virtual-time traffic through a scheduler: what each deployment would admit, and when.

Time comes from a :class:`~ratetree.clocks.VirtualClock` moved from one event to the next
(an arrival, or the end of a request's latency), so an hour of traffic costs what its
acquires cost, with no sleeping. Arrivals are Poisson or evenly spaced at a rate, or read
from a trace.
"""

from __future__ import annotations

import csv
import heapq
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import attrs

from ratetree.clocks import VirtualClock
from ratetree.core.leases import Lease
from ratetree.core.validate import show
from ratetree.errors import InvalidRequest, NoCapacity, RatetreeError
from ratetree.scheduler import Scheduler

PROGRESS_EVERY = 4096  # arrivals between progress reports
#: The longest span simulated (7 days): the report has a row per minute, so its size
#: follows the span, not the requests. A trace stamped in Unix time would span decades.
MAX_SPAN = 7 * 24 * 3600.0


class TraceError(RatetreeError, ValueError):
    """A trace file row that is not ``time,group[,tokens]``."""


@attrs.frozen
class Arrival:
    """One request: at ``time`` seconds, to ``group``, reserving ``tokens``."""

    time: float
    group: str
    tokens: float


def poisson_arrivals(
    rps: float, duration: float, groups: Sequence[str], tokens: float, rng: random.Random
) -> Iterator[Arrival]:
    """Poisson arrivals at ``rps`` per second for ``duration`` seconds, each to a group
    drawn uniformly from ``groups``."""
    now = rng.expovariate(rps)
    while now < duration:
        yield Arrival(now, groups[0] if len(groups) == 1 else rng.choice(groups), tokens)
        now += rng.expovariate(rps)


def uniform_arrivals(
    rps: float, duration: float, groups: Sequence[str], tokens: float
) -> Iterator[Arrival]:
    """One arrival every ``1/rps`` seconds from t=0, cycling through ``groups``."""
    count = math.ceil(duration * rps)
    for i in range(count):
        yield Arrival(i / rps, groups[i % len(groups)], tokens)


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise TraceError(f"{where}: {what} {show(text)} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise TraceError(f"{where}: {what} {show(text)} must be a finite number >= 0")
    return value


def read_trace(lines: Iterable[str], name: str, tokens: float) -> list[Arrival]:
    """Rows ``time,group[,tokens]`` (seconds from the start; ``tokens`` defaults to
    ``tokens``), sorted by time. A first row whose time is not a number is a header.
    Raises TraceError naming the file and line of a bad row."""
    out: list[Arrival] = []
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{name}:{number}"
        if number == 1 and not out:
            try:
                float(row[0])
            except ValueError:
                continue  # a header
        if len(row) not in (2, 3) or not row[1].strip():
            raise TraceError(f"{where}: expected time,group[,tokens], got {show(','.join(row))}")
        size = _number(row[2], "tokens", where) if len(row) == 3 and row[2].strip() else tokens
        out.append(Arrival(_number(row[0], "time", where), row[1].strip(), size))
    out.sort(key=lambda a: a.time)
    return out


@attrs.frozen
class DeploymentRow:
    """One deployment's totals over the run."""

    id: str
    label: str
    admitted: int
    tokens: float
    share: float  # of all admitted requests
    #: the deployment's own tightest rpm as requests per minute, None without one
    rpm: float | None = None


@attrs.frozen
class GroupRow:
    """Requests asked of one group over the run, and how they were refused."""

    name: str
    requests: int
    admitted: int
    refused: int
    #: retry_after of every refusal that had one, in arrival order
    retry_after: tuple[float, ...]
    #: refusals that waited on requests in flight (retry_after None)
    refused_in_flight: int


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen
class Minute:
    """Traffic that arrived in minute ``index`` (seconds ``60*index`` to ``60*index+60``)."""

    index: int
    admitted: Mapping[str, int] = attrs.field(converter=_frozen)  # deployment id -> requests
    tokens: Mapping[str, float] = attrs.field(converter=_frozen)  # deployment id -> tokens
    refused: Mapping[str, int] = attrs.field(converter=_frozen)  # group -> refusals


@attrs.frozen
class Result:
    """Everything a run produced: per deployment (in config order), per group (in order
    of first request) and per minute."""

    duration: float
    deployments: tuple[DeploymentRow, ...]
    groups: tuple[GroupRow, ...]
    timeline: tuple[Minute, ...]

    @property
    def requests(self) -> int:
        return sum(g.requests for g in self.groups)


class _Tally:
    """Counts as the simulation runs; frozen into a Result at the end."""

    __slots__ = ("admitted", "minutes", "refusals", "requests", "tokens")

    def __init__(self) -> None:
        self.requests: dict[str, int] = {}
        self.admitted: dict[str, int] = {}
        self.tokens: dict[str, float] = {}
        self.refusals: dict[str, list[float | None]] = {}
        # minute -> (admitted per deployment, tokens per deployment, refused per group)
        self.minutes: dict[int, tuple[dict[str, int], dict[str, float], dict[str, int]]] = {}

    def minute(self, time: float) -> tuple[dict[str, int], dict[str, float], dict[str, int]]:
        return self.minutes.setdefault(int(time // 60), ({}, {}, {}))


def simulate(
    scheduler: Scheduler,
    clock: VirtualClock,
    arrivals: Iterable[Arrival],
    *,
    duration: float,
    latency: float = 0.0,
    progress: Callable[[float], None] | None = None,
) -> Result:
    """Send ``arrivals`` (sorted by time) through ``scheduler``, whose clock is ``clock``.

    An admitted request holds its lease for ``latency`` seconds, then releases it with
    the tokens it reserved. A refused request is counted with its ``retry_after`` and
    dropped. ``progress`` is called with the virtual time now and then. Raises
    UnknownGroup for an arrival to an unknown group, and InvalidRequest for a token count
    no path can hold or a ``duration`` or arrival past MAX_SPAN seconds.
    """
    _check_span(duration, "duration")
    start = clock()
    tally = _Tally()
    pending: list[tuple[float, int, Lease]] = []  # (release time, tie-break, lease)
    for seq, arrival in enumerate(arrivals):
        _check_span(arrival.time, "an arrival at")
        while pending and pending[0][0] <= arrival.time:
            _release(clock, start, heapq.heappop(pending))
        clock.advance(max(0.0, start + arrival.time - clock()))
        group = arrival.group
        tally.requests[group] = tally.requests.get(group, 0) + 1
        admitted, tokens, refused = tally.minute(arrival.time)
        try:
            lease = scheduler.acquire(group, tokens=arrival.tokens)
        except NoCapacity as refusal:
            tally.refusals.setdefault(group, []).append(refusal.retry_after)
            refused[group] = refused.get(group, 0) + 1
        else:
            d = lease.deployment_id
            tally.admitted[d] = tally.admitted.get(d, 0) + 1
            tally.tokens[d] = tally.tokens.get(d, 0.0) + arrival.tokens
            admitted[d] = admitted.get(d, 0) + 1
            tokens[d] = tokens.get(d, 0.0) + arrival.tokens
            if latency > 0:
                heapq.heappush(pending, (arrival.time + latency, seq, lease))
            else:
                lease.release(tokens=arrival.tokens)
        if progress is not None and seq % PROGRESS_EVERY == 0:
            progress(arrival.time)
    while pending:
        _release(clock, start, heapq.heappop(pending))
    return _result(scheduler, tally, duration)


def _check_span(seconds: float, what: str) -> None:
    if not seconds <= MAX_SPAN:
        raise InvalidRequest(
            f"{what} {seconds:g} s is past the longest span simulated, "
            f"{MAX_SPAN:g} s (7 days); trace times are seconds from the start, not Unix time"
        )


def _release(clock: VirtualClock, start: float, item: tuple[float, int, Lease]) -> None:
    at, _, lease = item
    clock.advance(max(0.0, start + at - clock()))
    lease.release(tokens=lease.tokens)


def _result(scheduler: Scheduler, tally: _Tally, duration: float) -> Result:
    total = sum(tally.admitted.values())
    rows = tuple(
        DeploymentRow(
            d.id,
            d.label or d.id,
            tally.admitted.get(d.id, 0),
            tally.tokens.get(d.id, 0.0),
            tally.admitted.get(d.id, 0) / total if total else 0.0,
            min((r.per_minute for r in d.limits.rpm), default=None),
        )
        for d in scheduler.spec.deployments
    )
    groups = []
    for name, requests in tally.requests.items():
        refusals = tally.refusals.get(name, [])
        waits = tuple(r for r in refusals if r is not None)
        groups.append(
            GroupRow(
                name,
                requests,
                requests - len(refusals),
                len(refusals),
                waits,
                len(refusals) - len(waits),
            )
        )
    last = max(math.ceil(duration / 60) - 1, *tally.minutes, 0)
    timeline = tuple(Minute(i, *tally.minutes.get(i, ({}, {}, {}))) for i in range(last + 1))
    return Result(duration, rows, tuple(groups), timeline)
