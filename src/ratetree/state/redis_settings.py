"""Validation of a Redis state's settings and the client it talks through, shared by the
synchronous state and any other Redis backend."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ratetree.core.validate import show
from ratetree.errors import ConfigError
from ratetree.state.redis_checks import redact

__all__ = ["open_client", "validate"]


def validate(
    prefix: object,
    on_unavailable: object,
    *,
    positive: Mapping[str, object],
    finite: Mapping[str, object],
    counts: Mapping[str, object],
) -> None:
    """Raise ConfigError naming the setting unless ``prefix`` is a non-empty string
    without braces, ``on_unavailable`` is ``"closed"`` or ``"open"``, every ``positive``
    value a finite number > 0, every ``finite`` one a finite number >= 0 and every
    ``counts`` one an integer >= 0."""
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise ConfigError(f"prefix {show(prefix)} must be a non-empty string without braces")
    if on_unavailable not in ("closed", "open"):
        raise ConfigError(f"on_unavailable {show(on_unavailable)} must be 'closed' or 'open'")
    for name, value in (*positive.items(), *finite.items()):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name} {show(value)} must be a number")
        if not (math.isfinite(value) and value >= 0) or (name in positive and not value):
            bound = "> 0" if name in positive else ">= 0"
            raise ConfigError(f"{name} {show(value)} must be a finite number {bound}")
    for name, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"{name} {show(count)} must be an integer >= 0")


def open_client(client: Any, timeout: float) -> Any:
    """``client`` itself, or for a URL a ``redis.Redis`` with ``timeout`` seconds to connect
    and for each reply, which retries a command once on a broken connection and never on
    a timeout. Raises ConfigError for a URL the client cannot read (shown with its password
    replaced by ``***``)."""
    import redis  # the optional dependency
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    if not isinstance(client, str):
        return client
    # redis-py retries 10 times by default, on timeouts too: a hung server would hold each
    # call for 11 timeouts, and a retried commit may run twice.
    retry = Retry(NoBackoff(), 1, supported_errors=(redis.exceptions.ConnectionError,))
    try:
        return redis.Redis.from_url(
            client, socket_timeout=timeout, socket_connect_timeout=timeout, retry=retry
        )
    except ValueError as err:
        raise ConfigError(f"Redis URL {show(redact(client))} is invalid: {err}") from None
