"""Bad input raises the same error type with the same message in the pure-Python and the
compiled build (``ratetree.compiled``): compiled code enforces annotations at run time, so
the public entry points take ``object`` and check it themselves. CI runs this file in both
builds against one table, so any difference fails one of the two runs."""

# ruff: noqa: E501 (the expected messages are quoted whole)
from __future__ import annotations

import math
import os
import random
from collections.abc import Callable

import pytest

import ratetree
from ratetree import Deployment, Group, Limits, Member, Scheduler, TreeSpec
from ratetree.testing import FakeClock

SPEC = TreeSpec(
    deployments=[Deployment("a", limits=Limits(rpm=10, tpm=1000))],
    groups=[Group("g", members=[Member("a")])],
)


def scheduler(**options: object) -> Scheduler:
    return Scheduler(SPEC, clock=FakeClock(), rng=random.Random(0), **options)  # type: ignore[arg-type]


BAD_NUMBERS: dict[str, object] = {
    "str": "5",
    "none": None,
    "neg": -1,
    "nan": math.nan,
    "inf": math.inf,
    "bool": True,
    "huge": 10**400,
    "list": [1],
}
BAD_GROUPS: dict[str, object] = {"int": 5, "none": None, "bytes": b"g", "unknown": "nope"}


class Half:
    """Has a backend's flag but none of its methods."""

    shared = False

    def __repr__(self) -> str:
        return "<Half>"


def number_calls(v: object) -> dict[str, Callable[[], object]]:
    """Each entry point taking a number, called with ``v``."""
    return {
        "acquire tokens": lambda: scheduler().acquire("g", tokens=v),
        "try_acquire tokens": lambda: scheduler().try_acquire("g", tokens=v),
        "release tokens": lambda: scheduler().acquire("g").release(v),
        "release latency": lambda: scheduler().acquire("g").release(latency=v),
        "fail retry_after": lambda: scheduler().acquire("g").fail(v),
        "fail tokens": lambda: scheduler().acquire("g").fail(tokens=v),
        "explain tokens": lambda: scheduler().explain("g", v),
        "allowed_fails": lambda: scheduler(allowed_fails=v),
        "cooldown_time": lambda: scheduler(cooldown_time=v),
        "set allowed_fails": lambda: setattr(scheduler(), "allowed_fails", v),
        "set cooldown_time": lambda: setattr(scheduler(), "cooldown_time", v),
        "acquire_wait timeout": lambda: scheduler().acquire_wait("g", timeout=v),
        "acquire_wait priority": lambda: scheduler().acquire_wait("g", priority=v),
        "acquire_wait tokens": lambda: scheduler().acquire_wait("g", tokens=v),
        "clock advance": lambda: FakeClock().advance(v),  # type: ignore[arg-type]
    }


def group_calls(v: object) -> dict[str, Callable[[], object]]:
    """Each entry point taking a group name, called with ``v``."""
    return {
        "acquire group": lambda: scheduler().acquire(v),
        "explain group": lambda: scheduler().explain(v),
        "acquire_wait group": lambda: scheduler().acquire_wait(v),
    }


def calls() -> dict[str, Callable[[], object]]:
    """Every bad call by name; the names key ``EXPECTED``."""
    found: dict[str, Callable[[], object]] = {}
    for kind, v in BAD_NUMBERS.items():
        found |= {f"{name} {kind}": call for name, call in number_calls(v).items()}
    for kind, v in BAD_GROUPS.items():
        found |= {f"{name} {kind}": call for name, call in group_calls(v).items()}
    return found | {
        "acquire too large": lambda: scheduler().acquire("g", tokens=5000),
        # A set or a list of ids to avoid works as well as a frozenset: here all are avoided.
        "exclude set": lambda: scheduler().acquire("g", exclude={"a"}),
        "exclude list": lambda: scheduler().acquire("g", exclude=["a"]),
        "spec str": lambda: Scheduler("spec"),  # type: ignore[arg-type]
        "state str": lambda: Scheduler(SPEC, state="x"),  # type: ignore[arg-type]
        "state half": lambda: Scheduler(SPEC, state=Half()),  # type: ignore[arg-type]
        "rng str": lambda: Scheduler(SPEC, rng="x").acquire("g"),  # type: ignore[arg-type]
        "clock str": lambda: Scheduler(SPEC, clock="x").acquire("g"),  # type: ignore[arg-type]
        "clock returns str": lambda: Scheduler(SPEC, clock=lambda: "x").acquire("g"),  # type: ignore[arg-type]
        "clock returns None": lambda: Scheduler(SPEC, clock=lambda: None).acquire("g"),  # type: ignore[arg-type]
        "reconfigure str": lambda: scheduler().reconfigure("x"),  # type: ignore[arg-type]
    }


# (error type, message), as the pure-Python build raises them.
EXPECTED: dict[str, tuple[str, str]] = {
    "acquire tokens str": ("InvalidRequest", "tokens must be a finite number >= 0, got '5'"),
    "try_acquire tokens str": ("InvalidRequest", "tokens must be a finite number >= 0, got '5'"),
    "release tokens str": ("InvalidRequest", "tokens must be a finite number >= 0, got '5'"),
    "release latency str": ("InvalidRequest", "latency must be a finite number >= 0, got '5'"),
    "fail retry_after str": ("InvalidRequest", "retry_after must be a finite number >= 0, got '5'"),
    "fail tokens str": ("InvalidRequest", "tokens must be a finite number >= 0, got '5'"),
    "explain tokens str": ("InvalidRequest", "tokens must be a finite number >= 0, got '5'"),
    "allowed_fails str": ("ConfigError", "allowed_fails must be an integer >= 0, got '5'"),
    "cooldown_time str": ("ConfigError", "cooldown_time must be a finite number >= 0, got '5'"),
    "set allowed_fails str": ("ConfigError", "allowed_fails must be an integer >= 0, got '5'"),
    "set cooldown_time str": ("ConfigError", "cooldown_time must be a finite number >= 0, got '5'"),
    "acquire_wait timeout str": ("InvalidRequest", "timeout must be a finite number >= 0, got '5'"),
    "acquire_wait priority str": ("InvalidRequest", "priority must be a finite number, got '5'"),
    "acquire_wait tokens str": ("InvalidRequest", "tokens must be a finite number >= 0, got '5'"),
    "acquire tokens none": ("InvalidRequest", "tokens must be a finite number >= 0, got None"),
    "try_acquire tokens none": ("InvalidRequest", "tokens must be a finite number >= 0, got None"),
    "explain tokens none": ("InvalidRequest", "tokens must be a finite number >= 0, got None"),
    "allowed_fails none": ("ConfigError", "allowed_fails must be an integer >= 0, got None"),
    "cooldown_time none": ("ConfigError", "cooldown_time must be a finite number >= 0, got None"),
    "set allowed_fails none": ("ConfigError", "allowed_fails must be an integer >= 0, got None"),
    "set cooldown_time none": (
        "ConfigError",
        "cooldown_time must be a finite number >= 0, got None",
    ),
    "acquire_wait priority none": ("InvalidRequest", "priority must be a finite number, got None"),
    "acquire_wait tokens none": ("InvalidRequest", "tokens must be a finite number >= 0, got None"),
    "acquire tokens neg": ("InvalidRequest", "tokens must be a finite number >= 0, got -1"),
    "try_acquire tokens neg": ("InvalidRequest", "tokens must be a finite number >= 0, got -1"),
    "release tokens neg": ("InvalidRequest", "tokens must be a finite number >= 0, got -1"),
    "release latency neg": ("InvalidRequest", "latency must be a finite number >= 0, got -1"),
    "fail retry_after neg": ("InvalidRequest", "retry_after must be a finite number >= 0, got -1"),
    "fail tokens neg": ("InvalidRequest", "tokens must be a finite number >= 0, got -1"),
    "explain tokens neg": ("InvalidRequest", "tokens must be a finite number >= 0, got -1"),
    "allowed_fails neg": ("ConfigError", "allowed_fails must be an integer >= 0, got -1"),
    "cooldown_time neg": ("ConfigError", "cooldown_time must be a finite number >= 0, got -1"),
    "set allowed_fails neg": ("ConfigError", "allowed_fails must be an integer >= 0, got -1"),
    "set cooldown_time neg": ("ConfigError", "cooldown_time must be a finite number >= 0, got -1"),
    "acquire_wait timeout neg": ("InvalidRequest", "timeout must be a finite number >= 0, got -1"),
    "acquire_wait tokens neg": ("InvalidRequest", "tokens must be a finite number >= 0, got -1"),
    "acquire tokens nan": ("InvalidRequest", "tokens must be a finite number >= 0, got nan"),
    "try_acquire tokens nan": ("InvalidRequest", "tokens must be a finite number >= 0, got nan"),
    "release tokens nan": ("InvalidRequest", "tokens must be a finite number >= 0, got nan"),
    "release latency nan": ("InvalidRequest", "latency must be a finite number >= 0, got nan"),
    "fail retry_after nan": ("InvalidRequest", "retry_after must be a finite number >= 0, got nan"),
    "fail tokens nan": ("InvalidRequest", "tokens must be a finite number >= 0, got nan"),
    "explain tokens nan": ("InvalidRequest", "tokens must be a finite number >= 0, got nan"),
    "allowed_fails nan": ("ConfigError", "allowed_fails must be an integer >= 0, got nan"),
    "cooldown_time nan": ("ConfigError", "cooldown_time must be a finite number >= 0, got nan"),
    "set allowed_fails nan": ("ConfigError", "allowed_fails must be an integer >= 0, got nan"),
    "set cooldown_time nan": ("ConfigError", "cooldown_time must be a finite number >= 0, got nan"),
    "acquire_wait timeout nan": ("InvalidRequest", "timeout must be a finite number >= 0, got nan"),
    "acquire_wait priority nan": ("InvalidRequest", "priority must be a finite number, got nan"),
    "acquire_wait tokens nan": ("InvalidRequest", "tokens must be a finite number >= 0, got nan"),
    "acquire tokens inf": ("InvalidRequest", "tokens must be a finite number >= 0, got inf"),
    "try_acquire tokens inf": ("InvalidRequest", "tokens must be a finite number >= 0, got inf"),
    "release tokens inf": ("InvalidRequest", "tokens must be a finite number >= 0, got inf"),
    "release latency inf": ("InvalidRequest", "latency must be a finite number >= 0, got inf"),
    "fail retry_after inf": ("InvalidRequest", "retry_after must be a finite number >= 0, got inf"),
    "fail tokens inf": ("InvalidRequest", "tokens must be a finite number >= 0, got inf"),
    "explain tokens inf": ("InvalidRequest", "tokens must be a finite number >= 0, got inf"),
    "allowed_fails inf": ("ConfigError", "allowed_fails must be an integer >= 0, got inf"),
    "cooldown_time inf": ("ConfigError", "cooldown_time must be a finite number >= 0, got inf"),
    "set allowed_fails inf": ("ConfigError", "allowed_fails must be an integer >= 0, got inf"),
    "set cooldown_time inf": ("ConfigError", "cooldown_time must be a finite number >= 0, got inf"),
    "acquire_wait timeout inf": ("InvalidRequest", "timeout must be a finite number >= 0, got inf"),
    "acquire_wait priority inf": ("InvalidRequest", "priority must be a finite number, got inf"),
    "acquire_wait tokens inf": ("InvalidRequest", "tokens must be a finite number >= 0, got inf"),
    "acquire tokens bool": ("InvalidRequest", "tokens must be a finite number >= 0, got True"),
    "try_acquire tokens bool": ("InvalidRequest", "tokens must be a finite number >= 0, got True"),
    "release tokens bool": ("InvalidRequest", "tokens must be a finite number >= 0, got True"),
    "release latency bool": ("InvalidRequest", "latency must be a finite number >= 0, got True"),
    "fail retry_after bool": (
        "InvalidRequest",
        "retry_after must be a finite number >= 0, got True",
    ),
    "fail tokens bool": ("InvalidRequest", "tokens must be a finite number >= 0, got True"),
    "explain tokens bool": ("InvalidRequest", "tokens must be a finite number >= 0, got True"),
    "allowed_fails bool": ("ConfigError", "allowed_fails must be an integer >= 0, got True"),
    "cooldown_time bool": ("ConfigError", "cooldown_time must be a finite number >= 0, got True"),
    "set allowed_fails bool": ("ConfigError", "allowed_fails must be an integer >= 0, got True"),
    "set cooldown_time bool": (
        "ConfigError",
        "cooldown_time must be a finite number >= 0, got True",
    ),
    "acquire_wait timeout bool": (
        "InvalidRequest",
        "timeout must be a finite number >= 0, got True",
    ),
    "acquire_wait priority bool": ("InvalidRequest", "priority must be a finite number, got True"),
    "acquire_wait tokens bool": ("InvalidRequest", "tokens must be a finite number >= 0, got True"),
    "acquire tokens huge": (
        "InvalidRequest",
        "tokens must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "try_acquire tokens huge": (
        "InvalidRequest",
        "tokens must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "release tokens huge": (
        "InvalidRequest",
        "tokens must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "release latency huge": (
        "InvalidRequest",
        "latency must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "fail retry_after huge": (
        "InvalidRequest",
        "retry_after must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "fail tokens huge": (
        "InvalidRequest",
        "tokens must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "explain tokens huge": (
        "InvalidRequest",
        "tokens must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "cooldown_time huge": (
        "ConfigError",
        "cooldown_time must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "set cooldown_time huge": (
        "ConfigError",
        "cooldown_time must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "acquire_wait timeout huge": (
        "InvalidRequest",
        "timeout must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "acquire_wait priority huge": (
        "InvalidRequest",
        "priority must be a finite number, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "acquire_wait tokens huge": (
        "InvalidRequest",
        "tokens must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "acquire tokens list": ("InvalidRequest", "tokens must be a finite number >= 0, got [1]"),
    "try_acquire tokens list": ("InvalidRequest", "tokens must be a finite number >= 0, got [1]"),
    "release tokens list": ("InvalidRequest", "tokens must be a finite number >= 0, got [1]"),
    "release latency list": ("InvalidRequest", "latency must be a finite number >= 0, got [1]"),
    "fail retry_after list": (
        "InvalidRequest",
        "retry_after must be a finite number >= 0, got [1]",
    ),
    "fail tokens list": ("InvalidRequest", "tokens must be a finite number >= 0, got [1]"),
    "explain tokens list": ("InvalidRequest", "tokens must be a finite number >= 0, got [1]"),
    "allowed_fails list": ("ConfigError", "allowed_fails must be an integer >= 0, got [1]"),
    "cooldown_time list": ("ConfigError", "cooldown_time must be a finite number >= 0, got [1]"),
    "set allowed_fails list": ("ConfigError", "allowed_fails must be an integer >= 0, got [1]"),
    "set cooldown_time list": (
        "ConfigError",
        "cooldown_time must be a finite number >= 0, got [1]",
    ),
    "acquire_wait timeout list": (
        "InvalidRequest",
        "timeout must be a finite number >= 0, got [1]",
    ),
    "acquire_wait priority list": ("InvalidRequest", "priority must be a finite number, got [1]"),
    "acquire_wait tokens list": ("InvalidRequest", "tokens must be a finite number >= 0, got [1]"),
    "acquire group int": ("UnknownGroup", "unknown group 5"),
    "explain group int": ("UnknownGroup", "unknown group 5"),
    "clock advance str": ("InvalidRequest", "a clock's step must be a finite number >= 0, got '5'"),
    "clock advance none": (
        "InvalidRequest",
        "a clock's step must be a finite number >= 0, got None",
    ),
    "clock advance neg": ("InvalidRequest", "a clock's step must be a finite number >= 0, got -1"),
    "clock advance nan": ("InvalidRequest", "a clock's step must be a finite number >= 0, got nan"),
    "clock advance inf": ("InvalidRequest", "a clock's step must be a finite number >= 0, got inf"),
    "clock advance bool": (
        "InvalidRequest",
        "a clock's step must be a finite number >= 0, got True",
    ),
    "clock advance list": (
        "InvalidRequest",
        "a clock's step must be a finite number >= 0, got [1]",
    ),
    "clock advance huge": (
        "InvalidRequest",
        "a clock's step must be a finite number >= 0, got 10000000000000000000000000000000000000000000000000000000000000000000000000000...",
    ),
    "acquire_wait group int": ("UnknownGroup", "unknown group 5"),
    "acquire group none": ("UnknownGroup", "unknown group None"),
    "explain group none": ("UnknownGroup", "unknown group None"),
    "acquire_wait group none": ("UnknownGroup", "unknown group None"),
    "acquire group bytes": ("UnknownGroup", "unknown group b'g'"),
    "explain group bytes": ("UnknownGroup", "unknown group b'g'"),
    "acquire_wait group bytes": ("UnknownGroup", "unknown group b'g'"),
    "acquire group unknown": ("UnknownGroup", "unknown group 'nope'"),
    "explain group unknown": ("UnknownGroup", "unknown group 'nope'"),
    "acquire_wait group unknown": ("UnknownGroup", "unknown group 'nope'"),
    "acquire too large": (
        "InvalidRequest",
        "tokens=5000 exceeds every path of group 'g': the largest request it can ever admit is 1000 tokens",
    ),
    "exclude set": ("NoCapacity", "no capacity in group 'g' for 0 s"),
    "exclude list": ("NoCapacity", "no capacity in group 'g' for 0 s"),
    "spec str": ("SpecTypeError", "spec 'spec' must be a TreeSpec (got str)"),
    "state str": (
        "SpecTypeError",
        "state must be a state backend (ratetree.state.base.StateBackend), got 'x'",
    ),
    "state half": (
        "SpecTypeError",
        "state must be a state backend (ratetree.state.base.StateBackend), got <Half>",
    ),
    "rng str": ("SpecTypeError", "rng must be a random.Random, got 'x'"),
    "clock str": ("SpecTypeError", "clock must be a callable returning seconds, got 'x'"),
    "clock returns str": ("TypeError", "'<=' not supported between instances of 'float' and 'str'"),
    "clock returns None": (
        "TypeError",
        "'<=' not supported between instances of 'float' and 'NoneType'",
    ),
    "reconfigure str": ("SpecTypeError", "spec 'x' must be a TreeSpec (got str)"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_input_raises_the_same_in_both_builds(name: str) -> None:
    kind, message = EXPECTED[name]
    with pytest.raises(Exception) as raised:
        calls()[name]()
    assert (type(raised.value).__name__, str(raised.value)) == (kind, message), (
        f"compiled={ratetree.compiled}"
    )


def test_every_bad_call_has_an_expectation() -> None:
    valid = {  # accepted as they are: no error expected
        "release tokens none",
        "release latency none",
        "fail retry_after none",
        "fail tokens none",
        "acquire_wait timeout none",
        "acquire_wait priority neg",
        "allowed_fails huge",
        "set allowed_fails huge",
    }
    assert set(calls()) - valid == set(EXPECTED)


def test_compiled_is_a_bool() -> None:
    assert isinstance(ratetree.compiled, bool)


def test_the_build_under_test_is_the_one_ci_asked_for() -> None:
    # .ci/run sets this when it runs the suite against an installed wheel, so a run that
    # silently imported the other build (say, src/ through an editable install) fails.
    expected = os.environ.get("RATETREE_EXPECT_COMPILED")
    if expected is None:
        pytest.skip("RATETREE_EXPECT_COMPILED is not set (only .ci/run sets it)")
    assert ratetree.compiled is (expected == "1"), ratetree.__file__
