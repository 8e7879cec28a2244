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
        # Rounded up too, past float noise (7.0 - 6.999 is 0.0010000000000003 s, not 2 ms).
        headers["retry-after-ms"] = str(math.ceil(round(err.retry_after * 1000, 6)))
    response = httpx.Response(
        429, headers=headers, request=httpx.Request("POST", "https://ratetree.invalid")
    )
    return litellm.RateLimitError(  # type: ignore[no-any-return]
        message=f"ratetree: {err}",
        llm_provider="ratetree",
        model=err.group,
        response=response,
        headers=headers or None,
        # Not to be retried: the tree has no capacity for it anywhere (a Router retrying it
        # would sleep the Retry-After and ask again, holding the caller that long).
        num_retries=0,
    )


def bad_request(message: str, group: str) -> Exception:
    return litellm.BadRequestError(  # type: ignore[no-any-return]
        message=f"ratetree: {message}", model=group, llm_provider="ratetree"
    )
