"""Loading a model_list into a real ``litellm.Router``, offline, as the proxy would."""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network for the cost map


# LiteLLM's module-level callback lists: a Router with a usage-based strategy appends its
# handler to litellm.callbacks, which then checks every later Router's deployments too.
_CALLBACK_LISTS = (
    "callbacks",
    "input_callback",
    "success_callback",
    "failure_callback",
    "service_callback",
    "_async_input_callback",
    "_async_success_callback",
    "_async_failure_callback",
)


@contextmanager
def plain_router(
    model_list: list[dict[str, Any]],
    router_settings: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Iterator[Any]:
    """A Router over a copy of ``model_list``: ``os.environ/NAME`` values in litellm_params
    replaced from ``environ`` (as the proxy's load_config does), and a fake key, a mock
    response and a provider added where missing, so nothing is ever called. LiteLLM's
    global callback lists are put back as they were on exit. Skips without litellm."""
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
    saved = {name: list(getattr(litellm, name, None) or []) for name in _CALLBACK_LISTS}
    try:
        yield litellm.Router(model_list=entries, **(router_settings or {}))
    finally:
        for name, value in saved.items():
            if isinstance(getattr(litellm, name, None), list):
                getattr(litellm, name)[:] = value
        # A usage-based Router made outside an event loop leaves a coroutine it never
        # awaits; collect it here rather than warn in whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            gc.collect()


def deployment_ids(router: Any) -> list[str]:
    """Every deployment id the Router registered."""
    return list(router.registry().names(kind="ids"))


def deployments(router: Any, model_name: str) -> list[dict[str, Any]]:
    """The deployments the Router holds for ``model_name``."""
    return list(router.registry().deployments(model_name) or [])
