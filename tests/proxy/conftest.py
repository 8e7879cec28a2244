"""Fixtures of the proxy tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import redis_server


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A ``redis-server`` of the module's own; its tests skip (visibly) without one."""
    for server in redis_server.running(tmp_path_factory.mktemp("redis")):
        yield server.url
