"""Telling a misconfigured Redis from an unreachable one.

A wrong password, a failed TLS verification, a Redis Cluster node behind a plain client,
an ACL user without the commands or keys ratetree needs, or a read-only replica are no
outage: waiting does not fix them, and failing open would quietly turn a shared limit into
a per-replica one for good. :func:`describe` names such an error's cause in words (never a
bare slot number, never a secret); :func:`check_connection` runs at construction and turns
them into :class:`~ratetree.errors.ConfigError`; at run time the state logs them at error
level every time they happen (``state.redis``).
"""

from __future__ import annotations

import logging
import ssl
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ratetree.core.validate import show
from ratetree.errors import ConfigError
from ratetree.state.scripts import COMMIT, READ, SETTLE

__all__ = ["check_connection", "describe", "redact", "user_of"]

log = logging.getLogger("ratetree.redis")

# How much of a server's own message a description quotes.
QUOTE = 120


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (the user name stays: it helps)."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not even a URL: show its scheme at most
        return url.split(":", 1)[0] + ":***" if ":" in url else url
    if not password:
        return url
    host = parts.netloc.rsplit("@", 1)[-1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def user_of(client: Any) -> str:
    """The ACL user ``client`` logs in as (``'default'`` without one)."""
    # A plain client keeps its settings on its pool, a cluster client on its node manager.
    holder = getattr(client, "connection_pool", None) or getattr(client, "nodes_manager", None)
    kwargs = getattr(holder, "connection_kwargs", None)
    user = kwargs.get("username") if isinstance(kwargs, dict) else None
    return user if isinstance(user, str) and user else "default"


def _ssl_error(error: BaseException) -> ssl.SSLError | None:
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return None


def describe(error: BaseException, user: str = "default", cluster: bool = False) -> str | None:
    """The configuration problem ``error`` (from the redis client) reveals, in words, or
    None when it is an outage (refused, timed out, reset) or any other failure. Through a
    cluster client (``cluster``) cluster errors are outages: a failover answers them."""
    from redis import exceptions as e  # the optional dependency

    text = str(error)
    if isinstance(error, e.AuthenticationWrongNumberOfArgsError):
        return "Redis has no password set, but the client sent one"
    if isinstance(error, e.AuthenticationError):
        if "HELLO must be called" in text or "NOAUTH" in text or "required" in text:
            return f"Redis requires a password and none was given (user {user!r})"
        return f"Redis rejected the password for user {user!r}"
    if isinstance(error, e.NoPermissionError):
        return (
            f"Redis user {user!r} lacks a permission ratetree needs ({text[:QUOTE]}); it "
            "needs EVALSHA, SCRIPT LOAD and TIME, and read-write access to keys ratetree:*"
        )
    lowered = text.lower()
    if not cluster and (
        isinstance(error, (e.ClusterError, e.AskError, e.TryAgainError))
        or "cluster mode" in lowered
        or "cluster support" in lowered
    ):
        return (
            "this URL points at a Redis Cluster node; pass a cluster client "
            "(redis.cluster.RedisCluster) instead of a URL or a plain redis.Redis"
        )
    if isinstance(error, e.ReadOnlyError):
        return "this URL points at a read-only replica; point it at the primary"
    found = _ssl_error(error)
    if isinstance(found, ssl.SSLCertVerificationError):
        reason = found.verify_message or found.reason or "no reason given"
        return (
            f"Redis's TLS certificate failed verification ({reason}); pass the CA that "
            "signed it (ssl_ca_certs=) or fix the host name"
        )
    if found is not None and not isinstance(found, (ssl.SSLZeroReturnError, ssl.SSLEOFError)):
        return f"the TLS handshake with Redis failed ({found.reason or found})"
    return None


def check_connection(client: Any, prefix: str, on_unavailable: str, cluster_type: type) -> bool:
    """Talk to Redis once at construction: is it a cluster node behind a plain client (not
    a ``cluster_type``), do the scripts load (``SCRIPT LOAD``), does a read of one gate
    in ``prefix`` run (EVALSHA, TIME and access to the keys)? Returns True when all went
    through, False (with a warning) when Redis could not be reached: an outage at start is
    no configuration error. Raises ConfigError naming the cause for a configuration error
    (see :func:`describe`) or a script that does not load."""
    from redis import exceptions as e

    user = user_of(client)
    cluster = isinstance(client, cluster_type)
    try:
        if not cluster:
            try:
                info = client.info("cluster")
            except e.NoPermissionError:
                info = {}  # INFO is not needed at run time; the read below still runs
            if isinstance(info, dict) and str(info.get("cluster_enabled", 0)) == "1":
                raise e.ClusterError("cluster mode")
        for script in (COMMIT, SETTLE, READ):
            try:
                client.script_load(script)
            except e.ResponseError as err:
                if describe(err, user, cluster) is not None:
                    raise
                raise ConfigError(
                    f"a ratetree Lua script does not load on this server: {show(str(err))}"
                ) from None
        # One gate, capped (so its in-flight set is read too), without buckets.
        keys = [f"ratetree:{{{prefix}}}:h:check", f"ratetree:{{{prefix}}}:b:check"]
        client.register_script(READ)(keys=keys, args=["", "1", "", "", "", "", "", "1", "0"])
    except e.RedisError as err:
        problem = describe(err, user, cluster)
        if problem is not None:
            raise ConfigError(problem) from None  # the client's text may quote the URL
        log.warning(
            "ratetree: Redis did not answer the check at construction (%s); failing %s "
            "until it does",
            err,
            on_unavailable,
        )
        return False
    return True
