"""A stream that outlives a shared state's lease TTL keeps its slot: the LiteLLM
integration renews the leases of open streams (``integrations/litellm/renewal.py``).

A real Router and a real redis-server, on a FakeClock: advancing the clock runs the
renewal timer, so the stream's slot in Redis is checked at exact moments.
"""

from __future__ import annotations

import pytest

litellm = pytest.importorskip("litellm", reason="the litellm extra is not installed")
redis = pytest.importorskip("redis", reason="the redis extra is not installed")

import asyncio  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import redis_server as redis_server_module  # noqa: E402
from litellm_wiring import MESSAGES, Wire, one, settled, wiring  # noqa: E402
from ratetree import RedisState  # noqa: E402
from ratetree.testing import FakeClock  # noqa: E402
from redis_server import RedisServer  # noqa: E402

TTL = 3.0


@pytest.fixture
def wire() -> Iterator[Wire]:
    yield from wiring()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path)


def _expiries(server: RedisServer, prefix: str) -> list[float]:
    """Every in-flight slot's expiry, on the state's clock."""
    client = redis.Redis.from_url(server.url)
    found = []
    for key in client.scan_iter(f"ratetree:{{{prefix}}}:b:*"):
        found += [score for _, score in client.zrange(key, 0, -1, withscores=True)]
    return found


async def _cleared(server: RedisServer, prefix: str) -> bool:
    """Whether every in-flight slot leaves Redis within 5 s (checked every 10 ms)."""
    for _ in range(500):
        if not _expiries(server, prefix):
            return True
        await asyncio.sleep(0.01)
    return False


def test_a_stream_longer_than_the_lease_ttl_keeps_its_slot_while_it_is_open(
    wire: Wire, server: RedisServer
) -> None:
    clock = FakeClock(0.0)
    prefix = uuid.uuid4().hex
    state = RedisState(server.url, prefix=prefix, clock=clock, lease_ttl=TTL)
    model_list = one()
    model_list[0]["litellm_params"]["max_parallel_requests"] = 1  # a slot kept in Redis
    routing, router = wire(model_list, routing_options={"state": state, "clock": clock})
    chunks = router.completion(model="one", messages=MESSAGES, stream=True)
    assert routing.open_leases == 1
    assert _expiries(server, prefix) == [TTL]
    for _ in range(10):  # ten seconds of stream against a three-second TTL
        clock.advance(1.0)
        assert [e > clock() for e in _expiries(server, prefix)] == [True]
    for _chunk in chunks:
        pass
    asyncio.run(settled(routing))
    # The ledger lets go of the lease before the state's queued release reaches Redis.
    assert asyncio.run(_cleared(server, prefix))
    clock.advance(TTL)  # the renewal timer finds nothing open and stops
    assert _expiries(server, prefix) == []
