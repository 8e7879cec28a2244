"""Configuration errors are no outages: real redis-servers with a password, ACL users
without the permissions ratetree needs, cluster mode and TLS. At construction the eager
check raises ConfigError naming the cause in words; at run time (``check=False``) the same
errors are refused or failed open as an outage would be, but logged at error level every
time. No message carries a secret or a bare slot number."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

import redis_server as redis_server_module
from ratetree import (
    ConfigError,
    Deployment,
    Group,
    Limits,
    Member,
    RedisState,
    Scheduler,
    StateUnavailable,
    TreeSpec,
)
from ratetree.state.redis_checks import describe, redact, user_of
from redis_server import RedisServer

SECRET = "s3cret-Pa55"
SPEC = TreeSpec(
    groups=[Group("g", members=[Member(deployment="d")], limits=Limits(max_parallel_requests=2))],
    deployments=[Deployment("d")],
)


def _with_auth(url: str, user: str, password: str) -> str:
    return url.replace("://", f"://{user}:{password}@", 1)


@pytest.fixture
def password_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path, extra=("--requirepass", SECRET))


def _cluster_options(bus: int | None = None) -> tuple[str, ...]:
    # The bus port defaults to the port + 10000, too high for many free ports: name one.
    bus = bus or redis_server_module.free_port()
    return ("--cluster-enabled", "yes", "--cluster-port", str(bus))


@pytest.fixture
def cluster_node(tmp_path: Path) -> Iterator[RedisServer]:
    yield from redis_server_module.running(tmp_path, extra=_cluster_options())


def _refusals_logged(
    state: RedisState, caplog: pytest.LogCaptureFixture, times: int = 2
) -> list[str]:
    """Acquire ``times`` times on a scheduler over ``state``: each is refused, and each
    refusal's reason is logged at error level. The reasons."""
    scheduler = Scheduler(SPEC, state=state)
    reasons = []
    with caplog.at_level(logging.ERROR, logger="ratetree.redis"):
        for _ in range(times):
            with pytest.raises(StateUnavailable) as info:
                scheduler.acquire("g")
            reasons.append(info.value.reason)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == times  # every time, not once per outage
    assert all(reasons[0] in message for message in errors)
    assert state.stats.misconfigured == times and state.stats.unavailable == 0
    return reasons


def test_a_wrong_password_is_named_as_such_and_never_shown(password_server: RedisServer) -> None:
    wrong = _with_auth(password_server.url, "", "not-the-" + SECRET)
    with pytest.raises(ConfigError) as info:
        RedisState(wrong)
    assert str(info.value) == "Redis rejected the password for user 'default'"
    assert SECRET not in str(info.value) and info.value.__cause__ is None
    with pytest.raises(ConfigError, match="requires a password and none was given"):
        RedisState(password_server.url)
    right = _with_auth(password_server.url, "", SECRET)
    Scheduler(SPEC, state=RedisState(right, prefix=uuid.uuid4().hex)).acquire("g").release()


def test_a_wrong_password_at_run_time_is_logged_every_time(
    password_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    state = RedisState(_with_auth(password_server.url, "", "nope"), check=False)
    reasons = _refusals_logged(state, caplog)
    assert reasons[0] == "Redis rejected the password for user 'default'"


def test_an_acl_user_without_the_commands_or_keys_ratetree_needs(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    reader, keyless = f"reader-{uuid.uuid4().hex[:6]}", f"keyless-{uuid.uuid4().hex[:6]}"
    admin.acl_setuser(
        reader, enabled=True, passwords=[f"+{SECRET}"], keys=["*"], commands=["+@read"]
    )
    admin.acl_setuser(
        keyless, enabled=True, passwords=[f"+{SECRET}"], keys=["other:*"], commands=["+@all"]
    )
    for user, what in ((reader, "'script|load' command"), (keyless, "access one of the keys")):
        url = _with_auth(redis_server.url, user, SECRET)
        with pytest.raises(ConfigError) as info:
            RedisState(url)
        message = str(info.value)
        assert f"Redis user {user!r} lacks a permission ratetree needs" in message
        assert what in message and SECRET not in message
    # At run time: the user that may not touch ratetree's keys, checked by no one.
    state = RedisState(_with_auth(redis_server.url, keyless, SECRET), check=False)
    reasons = _refusals_logged(state, caplog)
    assert reasons[0].startswith(f"Redis user {keyless!r} lacks a permission")
    # A wrong password for a named user names that user.
    with pytest.raises(ConfigError, match=f"rejected the password for user {reader!r}"):
        RedisState(_with_auth(redis_server.url, reader, "wrong"))


def test_a_cluster_node_behind_a_plain_client_is_named_in_words(
    cluster_node: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match="points at a Redis Cluster node; pass a cluster client"):
        RedisState(cluster_node.url)
    # Unchecked, a node that serves no slot answers CLUSTERDOWN: the same words, every time.
    reasons = _refusals_logged(RedisState(cluster_node.url, check=False), caplog)
    assert "Redis Cluster node" in reasons[0]


def _wait_for(predicate: object) -> None:
    done = threading.Event()
    for _ in range(1000):
        if callable(predicate) and predicate():
            return
        done.wait(0.01)
    raise AssertionError("the cluster did not form")


def test_moved_from_a_two_node_cluster_names_the_cause_not_the_slot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    bus = redis_server_module.free_port()
    nodes = [
        redis_server_module.running(tmp_path / "a", extra=_cluster_options()),
        redis_server_module.running(tmp_path / "b", extra=_cluster_options(bus)),
    ]
    a, b = (next(n) for n in nodes)
    try:
        owner = redis.Redis.from_url(b.url)
        owner.cluster("ADDSLOTSRANGE", "0", "16383")
        redis.Redis.from_url(a.url).cluster("MEET", "127.0.0.1", str(b.port), str(bus))
        other = redis.Redis.from_url(a.url)

        def formed() -> bool:
            info = other.cluster("INFO")
            return isinstance(info, dict) and info.get("cluster_state") == "ok"

        _wait_for(formed)
        # A's plain client is sent to B for every key: MOVED <slot> <address>.
        reasons = _refusals_logged(RedisState(a.url, check=False, prefix="p"), caplog)
        slot = str(key_slot(b"ratetree:{p}:h:d:d"))
        assert "Redis Cluster node" in reasons[0] and not re.search(rf"\b{slot}\b", reasons[0])
        # What the message advises works: a cluster client, checked and used.
        owner.acl_setuser("ops", enabled=True, nopass=True, keys=["*"], commands=["+@all"])
        cluster = RedisCluster(host="127.0.0.1", port=b.port, username="ops", password="-")
        assert user_of(cluster) == "ops"  # read from the cluster client's settings
        scheduler = Scheduler(SPEC, state=RedisState(cluster, prefix=uuid.uuid4().hex))
        scheduler.acquire("g").release()
        cluster.close()
    finally:
        for n in nodes:
            next(n, None)


def _certificate(directory: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not on PATH: no certificate for the TLS server")
    cert, key = directory / "cert.pem", directory / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    subprocess.run(
        ["openssl", *request, "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_a_tls_certificate_that_fails_verification_is_named(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    files = ("--tls-cert-file", str(cert), "--tls-key-file", str(key))
    extra = (*files, "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")
    try:
        servers = redis_server_module.running(tmp_path, extra=extra, tls=True)
        server = next(servers)
    except RuntimeError as err:  # a redis-server built without TLS refuses --tls-port
        pytest.skip(f"this redis-server does not support TLS: {err}")
    try:
        with pytest.raises(ConfigError, match="TLS certificate failed verification"):
            RedisState(server.url)
        trusted = redis.Redis.from_url(server.url, ssl_ca_certs=str(cert), ssl_check_hostname=False)
        Scheduler(SPEC, state=RedisState(trusted, prefix=uuid.uuid4().hex)).acquire("g").release()
    finally:
        next(servers, None)


def test_a_bad_url_is_a_config_error_without_its_password() -> None:
    for url in (f"http://user:{SECRET}@host:1/0", f"redis://user:{SECRET}@host:port/0"):
        with pytest.raises(ConfigError) as info:
            RedisState(url)
        assert "user:***@host" in str(info.value) and SECRET not in str(info.value)
    assert redact(f"rediss://:{SECRET}@h:6380/1") == "rediss://:***@h:6380/1"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


def test_an_unreachable_server_at_construction_is_an_outage_not_a_config_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = redis_server_module.free_port()
    with caplog.at_level(logging.WARNING, logger="ratetree.redis"):
        state = RedisState(f"redis://127.0.0.1:{port}/0")
    assert any("did not answer the check" in r.getMessage() for r in caplog.records)
    with pytest.raises(StateUnavailable):
        Scheduler(SPEC, state=state).acquire("g")


def test_cluster_errors_through_a_cluster_client_are_outages_a_failover_ends() -> None:
    down = redis.exceptions.ClusterDownError("The cluster is down")
    assert describe(down, cluster=True) is None
    assert "Redis Cluster node" in (describe(down) or "")
