"""The LiteLLM exceptions a refused pick raises, shaped as the proxy passes them on."""

from __future__ import annotations

import math

import httpx

import litellm
from ratetree.errors import NoCapacity


def no_capacity_error(err: NoCapacity) -> Exception:
    """LiteLLM's RateLimitError (status 429) with the wait as a ``retry-after`` header, which
    the proxy passes on to its client."""
    headers = {}
    if err.retry_after is not None:
        headers["retry-after"] = str(math.ceil(err.retry_after))
    response = httpx.Response(
        429, headers=headers, request=httpx.Request("POST", "https://ratetree.invalid")
    )
    return litellm.RateLimitError(  # type: ignore[no-any-return]
        message=f"ratetree: {err}",
        llm_provider="ratetree",
        model=err.group,
        response=response,
        headers=headers or None,
    )


def bad_request(message: str, group: str) -> Exception:
    return litellm.BadRequestError(  # type: ignore[no-any-return]
        message=f"ratetree: {message}", model=group, llm_provider="ratetree"
    )
