"""Per-token prices from LiteLLM's cost map for deployments that name none, so the
cost-based strategy ranks them as LiteLLM's own ``cost-based-routing`` does."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

COST_KEYS = ("input_cost_per_token", "output_cost_per_token")
_COST_STRATEGIES = frozenset({"cost-based-routing", "cost-based"})


def wants_prices(routing_strategy: object, group_strategies: object) -> bool:
    """Whether any group of the tree ranks by cost."""
    named = [routing_strategy]
    if isinstance(group_strategies, Mapping):
        named += list(group_strategies.values())
    return any(getattr(s, "value", s) in _COST_STRATEGIES for s in named)


def priced(model_list: object) -> object:
    """``model_list`` with LiteLLM's cost-map prices put in ``model_info`` of each
    deployment entry that names no price of its own (in litellm_params or model_info) and
    whose model the map knows. Entries are copied, never changed; anything that is not a
    well-formed entry is passed on as it is, for the loader to judge."""
    if not isinstance(model_list, list):
        return model_list
    return [_priced(entry) for entry in model_list]


def _priced(entry: object) -> object:
    if not isinstance(entry, Mapping):
        return entry
    params, info = entry.get("litellm_params"), entry.get("model_info") or {}
    if not isinstance(params, Mapping) or not isinstance(info, Mapping):
        return entry
    if any(params.get(k) is not None or info.get(k) is not None for k in COST_KEYS):
        return entry
    model = params.get("model")
    if not isinstance(model, str):
        return entry
    import litellm  # the integration's dependency; this module imports without it

    try:
        known: Mapping[str, Any] = litellm.get_model_info(model)
    except Exception:  # unknown to the map (or a group name): the loader decides
        return entry
    prices = {k: known[k] for k in COST_KEYS if isinstance(known.get(k), (int, float))}
    if not prices:
        return entry
    return {**entry, "model_info": {**info, **prices}}
