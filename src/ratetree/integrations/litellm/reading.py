"""What ratetree reads from LiteLLM's requests, responses and exceptions. Plain data access
(no LiteLLM import), so it works on whatever shape a LiteLLM version hands over."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, MutableMapping
from typing import Any

TICKET = "ratetree_lease"  # the metadata key that ties a request's attempt to its lease
CALL_ID = "litellm_call_id"  # the hidden param LiteLLM puts an attempt's call id in
PATH = "ratetree_path"  # the metadata key (and response hidden param) naming the path chosen
TRIED = "ratetree_tried"  # the metadata key listing (trace id, deployments tried) of a request
_METADATA_KEYS = ("metadata", "litellm_metadata")
_MOCKED = "my-original-response"  # what LiteLLM's mock_response logs as the raw answer


def estimate_tokens(request: Mapping[str, Any]) -> int:
    """The tokens to reserve for a request before its usage is known: the completion cap it
    asks for (``max_completion_tokens`` or ``max_tokens``, else 0) plus the prompt's text
    length / 4, rounded up (about 4 characters per token in English text). The lease
    settles the real count from the response's usage, refunding or charging the difference."""
    cap = request.get("max_completion_tokens")
    if cap is None:
        cap = request.get("max_tokens")
    out = cap if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0 else 0
    return out + math.ceil(_text_length(request.get("messages"), request.get("input")) / 4)


def _text_length(*values: object) -> int:
    total = 0
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            total += len(value)
        elif isinstance(value, Mapping):
            stack.extend(value.get(key) for key in ("content", "text"))
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return total


def request_metadata(request: dict[str, Any]) -> dict[str, Any]:
    """The request's metadata dict (LiteLLM's newer endpoints call it ``litellm_metadata``),
    created if missing; it travels with every attempt into the callbacks."""
    name = "litellm_metadata" if "litellm_metadata" in request else "metadata"
    metadata = request.get(name)
    if not isinstance(metadata, dict):
        metadata = request[name] = {}
    return metadata


def ticket_of(kwargs: Mapping[str, Any]) -> object:
    return metadata_value(kwargs, TICKET)


def deployment_of(kwargs: Mapping[str, Any]) -> str | None:
    params = kwargs.get("litellm_params")
    for place in (kwargs, params if isinstance(params, Mapping) else {}):
        info = place.get("model_info")
        if isinstance(info, Mapping) and info.get("id") is not None:
            return str(info["id"])
    return None


def total_tokens(response: object) -> int | None:
    usage = response.get("usage") if isinstance(response, Mapping) else None
    if usage is None:
        usage = getattr(response, "usage", None)
    total = usage.get("total_tokens") if isinstance(usage, Mapping) else None
    if total is None:
        total = getattr(usage, "total_tokens", None)
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        return total
    return None


def raw_answer(kwargs: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The provider's answer as LiteLLM hands it to its post-call log before it builds the
    response (``original_response``: the body, or its JSON text), or None when what it
    holds is no answer (some error paths log the error's text there before raising). A
    ``mock_response`` answer counts as an empty one."""
    raw = kwargs.get("original_response")
    if isinstance(raw, str) and raw.startswith("{"):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    if isinstance(raw, Mapping):
        return raw
    return {} if raw == _MOCKED else None


def metadata_value(kwargs: Mapping[str, Any], key: str) -> object:
    """``key`` from the request's metadata, wherever LiteLLM put the metadata."""
    params = kwargs.get("litellm_params")
    for place in (kwargs, params if isinstance(params, Mapping) else {}):
        for name in _METADATA_KEYS:
            metadata = place.get(name)
            if isinstance(metadata, Mapping) and key in metadata:
                return metadata[key]
    return None


def _header(headers: object, name: str) -> str | None:
    if isinstance(headers, Mapping):  # httpx.Headers is one too
        for key, value in headers.items():
            if isinstance(key, str) and key.lower() == name:
                return str(value)
    return None


def retry_after_of(exc: BaseException) -> float | None:
    """The seconds a provider's 429 asks to wait: its ``retry-after-ms`` or ``retry-after``
    header in seconds (the HTTP-date form is not read), from the exception's ``headers`` or
    its HTTP response. None when absent or unreadable."""
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "headers", None), getattr(response, "headers", None)):
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            text = _header(headers, name)
            if text is None:
                continue
            try:
                seconds = float(text) * scale
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return seconds
    return None


def hidden_param(response: object, key: str) -> object:
    """``key`` of a response's ``_hidden_params``, a dict on most responses and LiteLLM's
    ``HiddenParams`` object on text completions; None when absent."""
    hidden = getattr(response, "_hidden_params", None)
    if isinstance(hidden, Mapping):
        return hidden.get(key)
    return None if hidden is None else getattr(hidden, key, None)


def set_hidden_param(response: object, key: str, value: object) -> None:
    """Set ``key`` of a response's ``_hidden_params`` unless it holds a value already; a
    response without hidden params is left alone."""
    hidden = getattr(response, "_hidden_params", None)
    if hidden is None or hidden_param(response, key) is not None:
        return
    if isinstance(hidden, MutableMapping):
        hidden[key] = value
    else:  # LiteLLM's HiddenParams (text completions) takes extra attributes
        setattr(hidden, key, value)


def served_as(response: object) -> tuple[str, str]:
    """The group a Router response was served as (its ``x-litellm-model-group`` header) and
    the deployment id it came from (``model_id``), each "" when the response does not say."""
    headers = hidden_param(response, "additional_headers")
    group = headers.get("x-litellm-model-group") if isinstance(headers, Mapping) else None
    deployment = hidden_param(response, "model_id")
    return (
        group if isinstance(group, str) else "",
        deployment if isinstance(deployment, str) else "",
    )
