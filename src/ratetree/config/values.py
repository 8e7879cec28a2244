"""Single values in a LiteLLM config, read the way LiteLLM reads them.

LiteLLM's proxy replaces an ``os.environ/NAME`` string with that variable when it loads
the config, and pydantic's lax mode turns ``rpm: "30"`` into the integer 30. A limit can
sit in three places on an entry; LiteLLM's usage-based strategies and its rate-limit
pre-call check look at the entry's top level, then ``litellm_params``, then ``model_info``
(``router_strategy/lowest_tpm_rpm_v2.py``, ``pre_call_checks/model_rate_limit_check.py``).
Measured on LiteLLM 1.110.2's Router (simple-shuffle, 300 picks): ``order`` in
``model_info`` ranks as in ``litellm_params``; ``weight`` in ``model_info`` is ignored;
``rpm``/``tpm`` at the top level weigh the shuffle, in ``model_info`` they do not. And
``max_parallel_requests`` is read from ``litellm_params`` only (``invoke/slots.py``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ratetree.core.specs import Limits, Rate
from ratetree.core.validate import show
from ratetree.errors import ConfigError

ENV_PREFIX = "os.environ/"

#: The keys a reference entry may carry: what ratetree reads to route, nothing a provider uses.
ROUTING_KEYS = frozenset({"model", "rpm", "tpm", "order", "weight", "max_parallel_requests"})
#: Keys of an entry itself (beside litellm_params) that a reference may carry.
#: Keys LiteLLM reads from litellm_params only (simple_shuffle.py, invoke/slots.py).
PARAMS_ONLY = ("weight", "max_parallel_requests")
_ENTRY_KEYS = frozenset({"model_name", "litellm_params", "model_info", "rpm", "tpm"})
# order is not here: check_order reads strings itself, and names the value as written.
_NUMERIC_KEYS = frozenset({"rpm", "tpm", "max_parallel_requests"})


def refuse_unknown(where: str, keys: Iterable[object], allowed: Iterable[str]) -> None:
    """Raise ConfigError naming the keys outside ``allowed``, and the ones to use."""
    allowed = tuple(allowed)
    unknown = sorted(map(show, set(keys) - set(allowed)))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {', '.join(unknown)}; use {', '.join(allowed)}")


def from_environment(value: object, what: str, environ: Mapping[str, str]) -> object:
    """``value``, or the variable it names when it is ``os.environ/NAME``.

    Raises ConfigError naming ``what`` and the variable when it is not set (LiteLLM would
    quietly read None there, which for a limit means no limit at all).
    """
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX) :]
        try:
            return environ[name]
        except KeyError:
            raise ConfigError(
                f"{what} {show(value)}: environment variable {name!r} is not set"
            ) from None
    return value


def as_number(value: object) -> object:
    """A string holding a finite number becomes that number (``"30"`` -> 30,
    ``"2.5"`` -> 2.5), as pydantic's lax mode reads it; anything else is left alone, so a
    rate string such as ``"30/minute"`` stays a string."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        return value
    return number if math.isfinite(number) else value


def read_value(value: object, what: str, environ: Mapping[str, str]) -> object:
    """One routing value as LiteLLM sees it: environment first, then numeric strings.

    A string ``weight`` stays a string (LiteLLM's simple-shuffle raises on it), so the
    weight check refuses it. Raises ConfigError for an unset environment variable.
    """
    value = from_environment(value, what, environ)
    key = what.rsplit(".", 1)[-1]
    if key in _NUMERIC_KEYS:
        return as_number(value)
    return value


def _mapping(value: object) -> Mapping[object, object]:
    return value if isinstance(value, Mapping) else {}


def entry_value(raw: Mapping[object, object], key: str, environ: Mapping[str, str]) -> object:
    """``key`` of a model_list entry, from where LiteLLM takes it.

    ``rpm`` and ``tpm``: the entry's top level, then ``litellm_params``, then ``model_info``;
    ``weight`` and ``max_parallel_requests``: ``litellm_params`` only (LiteLLM reads them
    nowhere else: :data:`PARAMS_ONLY`);
    every other key: ``litellm_params``, then ``model_info``. The first place that holds a
    value other than None wins. Raises ConfigError for an unset environment variable.
    """
    places: tuple[tuple[str, Mapping[object, object]], ...] = (
        ("litellm_params", _mapping(raw.get("litellm_params"))),
        ("model_info", _mapping(raw.get("model_info"))),
    )
    if key in ("rpm", "tpm"):
        places = (("", raw), *places)
    elif key in PARAMS_ONLY:
        places = places[:1]
    for place, mapping in places:
        value = mapping.get(key)
        if value is not None:
            return read_value(value, f"{place}.{key}" if place else key, environ)
    return None


def non_routing_keys(raw: Mapping[Any, object]) -> list[str]:
    """What makes an entry whose model names a group a deployment rather than a reference:
    every key outside the routing keys, as ``litellm_params.region_name``, ``model_info.id``
    or a key of the entry itself. Empty for an entry that can be a reference."""
    found = [show(k) for k in raw if k not in _ENTRY_KEYS]
    for place in ("litellm_params", "model_info"):
        found += [
            f"{place}.{k}" if isinstance(k, str) else f"{place}[{show(k)}]"
            for k in _mapping(raw.get(place))
            if k not in ROUTING_KEYS or (place == "model_info" and k == "model")
        ]
    return found


# --- writing values plain LiteLLM accepts -----------------------------------------------


def whole_per_minute(rates: tuple[Rate, ...]) -> int | None:
    """The one integer per-minute count ``rates`` mean, or None when they mean no such."""
    if len(rates) != 1:
        return None
    per_minute = rates[0].per_minute
    return int(per_minute) if per_minute >= 1 and per_minute.is_integer() else None


def plain_rate(rates: tuple[Rate, ...]) -> int:
    """What a flat config can say for ``rates``: the tightest, in whole requests (or
    tokens) per minute, rounded down but at least 1."""
    exact = whole_per_minute(rates)
    if exact is not None:
        return exact
    return max(1, math.floor(min(r.per_minute for r in rates)))


def plain_limits(limits: Limits) -> dict[str, int]:
    """``limits`` as the integer rpm, tpm and max_parallel_requests plain LiteLLM reads."""
    out = {
        key: plain_rate(rates) for key, rates in (("rpm", limits.rpm), ("tpm", limits.tpm)) if rates
    }
    if limits.max_parallel_requests is not None:
        out["max_parallel_requests"] = limits.max_parallel_requests
    return out
