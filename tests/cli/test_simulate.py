"""The simulation engine on its own: conservation, limits respected per minute, arrivals,
traces and progress reports."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.cli.simulate import (
    PROGRESS_EVERY,
    poisson_arrivals,
    read_trace,
    simulate,
    uniform_arrivals,
)
from ratetree.testing import FakeClock


def flat_spec(rpms: list[int], max_parallel: int | None) -> TreeSpec:
    deployments = [
        Deployment(f"d{i}", Limits(rpm=rpm, max_parallel_requests=max_parallel))
        for i, rpm in enumerate(rpms)
    ]
    members = [Member(deployment=d.id) for d in deployments]
    return TreeSpec(groups=[Group("g", members)], deployments=deployments)


@given(
    rpms=st.lists(st.integers(1, 40), min_size=1, max_size=3),
    rps=st.floats(0.05, 5),
    latency=st.sampled_from([0.0, 0.5, 7.0]),
    max_parallel=st.sampled_from([None, 1, 3]),
    seed=st.integers(0, 2**32),
)
def test_admissions_never_exceed_what_the_buckets_refill(
    rpms: list[int], rps: float, latency: float, max_parallel: int | None, seed: int
) -> None:
    spec = flat_spec(rpms, max_parallel)
    clock = FakeClock(123.0)  # the engine measures from wherever the clock starts
    scheduler = Scheduler(spec, clock=clock, rng=random.Random(seed))
    arrivals = list(poisson_arrivals(rps, 240, ["g"], 10, random.Random(seed)))
    result = simulate(scheduler, clock, arrivals, duration=240, latency=latency)

    [group] = result.groups
    assert group.requests == len(arrivals) == group.admitted + group.refused
    assert group.admitted == sum(d.admitted for d in result.deployments)
    assert len(result.timeline) == 4
    if group.admitted:
        assert math.isclose(sum(d.share for d in result.deployments), 1.0)
    for d, rpm in zip(result.deployments, rpms, strict=True):
        assert d.tokens == 10 * d.admitted
        so_far = 0
        for minute in result.timeline:
            count = minute.admitted.get(d.id, 0)
            assert count <= 2 * rpm  # full bucket at the minute's start plus a minute's refill
            so_far += count
            assert so_far <= rpm * (minute.index + 2)
        if max_parallel is not None and latency:
            # a slot is held `latency` seconds, so it serves at most 1 + 240/latency requests
            assert d.admitted <= max_parallel * (1 + 240 / latency)


def test_every_lease_is_released_by_the_end() -> None:
    spec = flat_spec([30], 1)
    clock = FakeClock()
    scheduler = Scheduler(spec, clock=clock, rng=random.Random(0))
    arrivals = list(uniform_arrivals(1.0, 60, ["g"], 0))
    simulate(scheduler, clock, arrivals, duration=60, latency=30.0)
    assert scheduler.snapshot().deployments["d0"].in_flight == 0


def test_uniform_arrivals_are_evenly_spaced_and_cycle_groups() -> None:
    arrivals = list(uniform_arrivals(4.0, 2.5, ["a", "b"], 5))
    assert [a.time for a in arrivals] == [i / 4 for i in range(10)]
    assert [a.group for a in arrivals] == ["a", "b"] * 5


def test_poisson_arrivals_average_the_rate() -> None:
    arrivals = list(poisson_arrivals(2.0, 5000, ["a"], 0, random.Random(1)))
    # 10,000 expected; a Poisson count's standard deviation is 100
    assert abs(len(arrivals) - 10_000) < 500
    assert all(0 <= a.time < 5000 for a in arrivals)


def test_a_trace_is_sorted_and_its_header_skipped() -> None:
    rows = ["time,group,tokens", "3,b,1", "1,a", " 2 , c , 9 "]
    arrivals = read_trace(rows, "t.csv", 4)
    assert [(a.time, a.group, a.tokens) for a in arrivals] == [
        (1, "a", 4),
        (2, "c", 9),
        (3, "b", 1),
    ]


def test_progress_is_reported_with_virtual_time_that_only_grows() -> None:
    spec = flat_spec([5], None)
    clock = FakeClock()
    scheduler = Scheduler(spec, clock=clock, rng=random.Random(0))
    arrivals = list(uniform_arrivals(10.0, 1000, ["g"], 0))
    seen: list[float] = []
    simulate(scheduler, clock, arrivals, duration=1000, progress=seen.append)
    assert len(seen) == math.ceil(len(arrivals) / PROGRESS_EVERY)
    assert seen == sorted(seen)
