"""What ratetree reads from a LiteLLM proxy's loaded config: the model_list with its group
references, the router_settings it honours, and where the shared Redis is.

Plain data in, plain data out (no LiteLLM import): the proxy hands over its config as a
mapping whose ``os.environ/`` values it has already resolved; values still in that form
(a config read from the file) are resolved here the same way.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import attrs

from ratetree.cli.config_file import ratetree_section
from ratetree.core.validate import show
from ratetree.errors import ConfigError

__all__ = ["ProxySettings", "read_proxy_settings"]

_ENV = "os.environ/"

# litellm.router_api.deployment_id(model_group, litellm_params): the id the proxy's Router
# gives a deployment without model_info.id. Passed in, so this module needs no LiteLLM.
DeploymentId = Callable[[str, Mapping[str, Any]], str]


@attrs.frozen
class ProxySettings:
    """The part of a proxy config ratetree acts on.

    ``model_list`` is the config's, with every deployment (an entry that is not a reference
    to another group) given an explicit ``model_info.id``: the id the proxy's Router gives
    it, so both name a deployment the same way. ``redis_url`` is None without Redis.
    ``digest`` names the configuration (the Redis key prefix: workers with the same config
    share limits, a changed config starts afresh). ``group_limits`` and
    ``group_strategies`` come from the config's top-level ``ratetree:`` key."""

    model_list: list[dict[str, Any]]
    model_group_alias: Any
    routing_strategy: Any
    routing_strategy_args: Any
    allowed_fails: int
    cooldown_time: float
    redis_url: str | None
    digest: str
    group_limits: Any = None
    group_strategies: Any = None

    def tree_settings(self) -> dict[str, Any]:
        """The keyword arguments the tree is built and rebuilt with besides the model_list
        (``RatetreeRouting.from_model_list`` and ``reconfigure`` both take them)."""
        return {
            "model_group_alias": self.model_group_alias,
            "routing_strategy": self.routing_strategy,
            "group_limits": self.group_limits,
            "group_strategies": self.group_strategies,
            "routing_strategy_args": self.routing_strategy_args,
        }


def _resolve(value: object) -> object:
    if isinstance(value, str) and value.startswith(_ENV):
        return os.environ.get(value[len(_ENV) :])
    return value


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} {show(value)} must be a mapping")
    return value


def _redis_url(settings: Mapping[str, Any]) -> str | None:
    """LiteLLM's own Redis settings: ``redis_url``, else ``redis_host``/``redis_port``/
    ``redis_password`` (each may be ``os.environ/NAME``)."""
    url = _resolve(settings.get("redis_url"))
    if url is not None:
        if not isinstance(url, str) or not url:
            raise ConfigError(f"router_settings.redis_url {show(url)} must be a URL")
        return url
    host = _resolve(settings.get("redis_host"))
    if host is None:
        return None
    if not isinstance(host, str) or not host:
        raise ConfigError(f"router_settings.redis_host {show(host)} must be a host name")
    port = _resolve(settings.get("redis_port")) or 6379
    try:
        port = int(str(port))
    except ValueError:
        raise ConfigError(f"router_settings.redis_port {show(port)} must be a port") from None
    password = _resolve(settings.get("redis_password"))
    auth = f":{quote(str(password), safe='')}@" if password else ""
    return f"redis://{auth}{host}:{port}/0"


def _pinned(model_list: list[Any], aliases: Mapping[str, Any], ids: DeploymentId) -> list[Any]:
    """A copy of ``model_list`` in which each deployment carries the id the proxy's Router
    gives it. A reference (an entry whose model names another group or an alias) keeps none;
    malformed entries are left for load_litellm to report."""
    names = {e.get("model_name") for e in model_list if isinstance(e, Mapping)} | set(aliases)
    pinned = copy.deepcopy(model_list)
    for entry in pinned:
        if not isinstance(entry, dict) or not isinstance(entry.get("litellm_params"), dict):
            continue
        params = entry["litellm_params"]
        for key, value in params.items():
            params[key] = _resolve(value)
        group = entry.get("model_name")
        info = entry.get("model_info")
        if params.get("model") in names - {group} or not isinstance(group, str):
            continue
        if info is None:
            info = entry["model_info"] = {}
        if isinstance(info, dict) and info.get("id") is None:
            info["id"] = ids(group, params)
    return pinned


def read_proxy_settings(config: Mapping[str, Any], deployment_id: DeploymentId) -> ProxySettings:
    """Read a proxy config (the parsed config.yaml, as the proxy loaded it).

    From ``router_settings``: ``routing_strategy``, ``model_group_alias``,
    ``allowed_fails``, ``cooldown_time`` and the Redis settings; from the top-level
    ``ratetree:`` key: ``group_limits`` and ``group_strategies``. Raises ConfigError when
    there is no model_list or a section has the wrong shape; the model_list itself is
    checked when the tree is built."""
    model_list = config.get("model_list")
    if not isinstance(model_list, list) or not model_list:
        raise ConfigError(f"model_list {show(model_list)} must be a non-empty list of entries")
    router = _mapping(config.get("router_settings"), "router_settings")
    aliases = router.get("model_group_alias")
    allowed_fails = router.get("allowed_fails")
    cooldown_time = router.get("cooldown_time")
    pinned = _pinned(model_list, aliases if isinstance(aliases, Mapping) else {}, deployment_id)
    redis_url = _redis_url(router)
    own = ratetree_section(config, "config.yaml")
    read = [
        own.get("group_limits"),
        own.get("group_strategies"),
        pinned,
        aliases,
        router.get("routing_strategy"),
        router.get("routing_strategy_args"),
        allowed_fails,
        cooldown_time,
        redis_url,
    ]
    digest = hashlib.sha256(json.dumps(read, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return ProxySettings(
        model_list=pinned,
        model_group_alias=aliases,
        routing_strategy=router.get("routing_strategy"),
        routing_strategy_args=router.get("routing_strategy_args"),
        allowed_fails=3 if allowed_fails is None else allowed_fails,
        cooldown_time=5.0 if cooldown_time is None else cooldown_time,
        redis_url=redis_url,
        digest=digest,
        group_limits=own.get("group_limits"),
        group_strategies=own.get("group_strategies"),
    )
