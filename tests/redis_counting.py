"""A ``redis.Redis`` that counts the commands it sends, set up as ``RedisState`` sets up
the client it makes from a URL. Import it after ``pytest.importorskip("redis")``."""

from __future__ import annotations

from typing import Any

import redis

from ratetree.state.redis_settings import open_client


class CountingRedis(redis.Redis):
    """Counts the commands it is asked to send (EVALSHA and the rest)."""

    sent = 0

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent += 1
        return super().execute_command(*args, **options)  # type: ignore[no-untyped-call]


def counting_client(url: str, timeout: float) -> CountingRedis:
    """A counting client with RedisState's own settings for ``url``: ``timeout`` seconds
    to connect and to answer, one retry on a broken connection, none on a timeout."""
    return CountingRedis(connection_pool=open_client(url, timeout).connection_pool)
