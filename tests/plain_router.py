"""Loading a model_list into a real ``litellm.Router``, offline, as the proxy would."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for the cost map


def plain_router(
    model_list: list[dict[str, Any]],
    router_settings: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """A Router over a copy of ``model_list``: ``os.environ/NAME`` values in litellm_params
    replaced from ``environ`` (as the proxy's load_config does), and a fake key, a mock
    response and a provider added where missing, so nothing is ever called. Skips without
    litellm."""
    litellm = pytest.importorskip("litellm", reason="loading into a Router needs litellm")
    environ = {} if environ is None else environ
    entries = []
    for item in model_list:
        params = {
            k: environ.get(v[len("os.environ/") :], "fake")
            if isinstance(v, str) and v.startswith("os.environ/")
            else v
            for k, v in item["litellm_params"].items()
        }
        params.setdefault("api_key", "fake")
        params.setdefault("mock_response", "ok")
        params.setdefault("custom_llm_provider", "openai")
        entries.append({**item, "litellm_params": params})
    return litellm.Router(model_list=entries, **(router_settings or {}))


def deployment_ids(router: Any) -> list[str]:
    """Every deployment id the Router registered."""
    return list(router.registry().names(kind="ids"))


def deployments(router: Any, model_name: str) -> list[dict[str, Any]]:
    """The deployments the Router holds for ``model_name``."""
    return list(router.registry().deployments(model_name) or [])
