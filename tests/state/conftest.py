"""Fixtures of the Redis state tests: one real ``redis-server`` per session. The whole
folder skips, saying why, without the ``redis`` extra or the server binary."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from redis import Redis

redis = pytest.importorskip("redis", reason="the redis extra is not installed")

import redis_server as redis_server_module  # noqa: E402
from redis_server import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One ``redis-server`` for the whole session; Redis tests skip (visibly) without it."""
    yield from redis_server_module.running(tmp_path_factory.mktemp("redis"))


@pytest.fixture
def volatile_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own with no append-only file and no snapshots: a restart
    loses every key."""
    yield from redis_server_module.running(tmp_path, persist=False)


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.close()
