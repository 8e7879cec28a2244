"""Switch ratetree on in the LiteLLM proxy from its config.yaml alone.

Add one callback to the proxy's config and start it as before::

    litellm_settings:
      callbacks: ["ratetree.integrations.litellm.proxy.ratetree_proxy"]

How it gets in, through LiteLLM's extension points only (LiteLLM 1.110):

- The proxy loads ``litellm_settings.callbacks`` in every worker while it loads the config,
  before it builds its Router. Resolving ``ratetree_proxy`` (this module's ``__getattr__``)
  reads that config, builds the tree (references, aliases, limits) and raises ConfigError
  for a bad one, which stops the proxy's startup ("Application startup failed", exit 3)
  before it serves anything.
- The proxy then builds its Router without the reference entries (it cannot call them).
  ratetree attaches to it, through the Router's public ``apply``/``register_plugin``: the
  groups without deployments of their own become aliases, every pick goes through the tree.
  A startup task attaches as soon as the proxy publishes the Router (its ``llm_router``),
  before the server accepts connections; ``async_pre_call_hook`` checks again before each
  request, so a Router the proxy rebuilt later is attached before it routes.
- ``async_post_call_response_headers_hook`` names the path each answer took.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from typing import Any

import yaml

from ratetree.errors import ConfigError
from ratetree.integrations.litellm.proxy_settings import ProxySettings, read_proxy_settings
from ratetree.integrations.litellm.reading import PATH, metadata_value
from ratetree.integrations.litellm.routing import RatetreeRouting
from ratetree.scheduler import Scheduler

try:
    from litellm.integrations.custom_logger import CustomLogger
    from litellm.router_api import ChangeSet, deployment_id
except ImportError as err:  # pragma: no cover - the litellm extra is missing
    raise ImportError(
        "ratetree.integrations.litellm.proxy needs the LiteLLM proxy: pip install 'ratetree[proxy]'"
    ) from err

__all__ = ["RatetreeProxy"]

log = logging.getLogger("ratetree.proxy")

_PASSED = re.compile(r"You passed model=(\S+)")

# How long the startup task waits for the proxy to publish its Router.
ATTACH_WAIT = 120.0
_POLL = 0.005


def _proxy_server() -> Any:
    """The running proxy's module (its globals ``llm_router`` and ``proxy_config``)."""
    from litellm.proxy import proxy_server

    return proxy_server


def running_config() -> Mapping[str, Any]:
    """The config the proxy in this process loaded (``os.environ/`` values resolved), or,
    when none is loaded (``litellm --validate_config`` loads into a config object of its
    own), the YAML file the proxy is loading (its ``user_config_file_path``, else
    ``CONFIG_FILE_PATH`` or ``WORKER_CONFIG``). Raises ConfigError when there is none."""
    server = _proxy_server()
    state = server.proxy_config.get_config_state()
    if isinstance(state, Mapping) and state.get("model_list"):
        return state
    paths = [getattr(server, "user_config_file_path", None)]
    paths += [os.environ.get(name) for name in ("CONFIG_FILE_PATH", "WORKER_CONFIG")]
    for path in paths:
        if isinstance(path, str) and os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                document = yaml.safe_load(file)
            if isinstance(document, Mapping):
                return document
    raise ConfigError("found no proxy config with a model_list (start it with --config)")


def _build(settings: ProxySettings) -> RatetreeRouting:
    state = None
    if settings.redis_url is not None:
        # The proxy picks on its event loop: an asyncio state never blocks it.
        from ratetree.state.redis_async import AsyncRedisState

        state = AsyncRedisState(settings.redis_url, prefix=f"proxy-{settings.digest}")
    scheduler = Scheduler.from_litellm(
        settings.model_list,
        model_group_alias=settings.model_group_alias,
        routing_strategy=settings.routing_strategy,
        routing_strategy_args=settings.routing_strategy_args,
        allowed_fails=settings.allowed_fails,
        cooldown_time=settings.cooldown_time,
        state=state,
    )
    return RatetreeRouting(scheduler)


class _ReferenceNoise(logging.Filter):
    """Drops the error (with traceback) the proxy's Router logs for each reference entry
    it cannot build ("LLM Provider NOT provided ... model=fast/glm-4.7"): ratetree routes
    those names, so the error says nothing true. Other errors pass."""

    def __init__(self) -> None:
        super().__init__("ratetree")
        self.names: frozenset[str] = frozenset()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()  # LiteLLM's own filter may have merged the args already
        if not text.startswith("Error creating deployment"):
            return True
        passed = _PASSED.search(text)
        return not ("LLM Provider NOT provided" in text and passed and passed[1] in self.names)


_NOISE = _ReferenceNoise()


def _workers() -> int:
    try:
        return int(os.environ.get("NUM_WORKERS", "1"))
    except ValueError:
        return 1


class RatetreeProxy(CustomLogger):  # type: ignore[misc]
    """The proxy callback: holds the tree built from the proxy's config and keeps the
    proxy's current Router attached to it. One per process (``ratetree_proxy``)."""

    def __init__(self) -> None:
        super().__init__()
        self.routing: RatetreeRouting | None = None
        self._digest: str | None = None
        self._router: object = None  # the Router attached to, compared by identity
        self._watch: asyncio.Task[None] | None = None

    def load(self, config: Mapping[str, Any], *, workers: int | None = None) -> None:
        """Build the tree from a proxy config; the Router the proxy builds next is attached
        to it. The same config again keeps the tree and its state. ``workers`` is the
        number of proxy workers (default: ``NUM_WORKERS``, which ``litellm`` sets). Raises
        ConfigError for an invalid config, naming the entry at fault, and keeps the tree
        it had."""
        settings = read_proxy_settings(config, deployment_id)
        if settings.digest == self._digest:
            return
        routing = _build(settings)
        if self.routing is not None:
            self.routing.detach()
        self.routing, self._digest, self._router = routing, settings.digest, None
        scheduler = routing.scheduler
        _NOISE.names = frozenset(scheduler.groups) | frozenset(scheduler.spec.aliases)
        logging.getLogger("LiteLLM Router").addFilter(_NOISE)  # once: a Filter is kept once
        workers = _workers() if workers is None else workers
        if settings.redis_url is None and workers > 1:
            log.warning(
                "ratetree: %d workers and no Redis in router_settings: each worker enforces "
                "the limits on its own (set router_settings.redis_url to share them)",
                workers,
            )
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no proxy running here; the first request attaches
        self._watch = loop.create_task(self._attach_when_published())

    async def _attach_when_published(self) -> None:
        """Attach the Router as soon as the proxy publishes it, during its startup."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ATTACH_WAIT
        while loop.time() < give_up:
            if self.attached():
                return
            await asyncio.sleep(_POLL)

    def attached(self) -> bool:
        """Attach the proxy's current Router if it is new; False while it has none."""
        router = getattr(_proxy_server(), "llm_router", None)
        if router is None or self.routing is None:
            return False
        if router is not self._router:
            self.attach(router)
        return True

    def attach(self, router: Any) -> None:
        """Give ``router`` the tree's view of the deployments (every group, umbrella groups
        too, listing every deployment it reaches, under the ids the proxy gave them) and
        the configured aliases, and route its picks through the tree."""
        routing = self.routing
        if routing is None:
            raise RuntimeError("RatetreeProxy.attach before load")
        router.set_model_list(routing.model_list)
        router.apply(ChangeSet(assign={"model_group_alias": routing.model_group_alias}))
        routing.attach(router)
        self._router = router

    def detach(self) -> None:
        """Stop settling leases from LiteLLM's events (see :meth:`RatetreeRouting.detach`);
        the next request attaches the proxy's Router again."""
        if self.routing is not None:
            self.routing.detach()
        self._router = None

    # -- the proxy's hooks ------------------------------------------------------------------

    async def async_pre_call_hook(
        self, user_api_key_dict: object, cache: object, data: dict[str, Any], call_type: object
    ) -> None:
        self.attached()

    async def async_post_call_response_headers_hook(
        self,
        data: dict[str, Any],
        user_api_key_dict: object,
        response: object,
        request_headers: dict[str, str] | None = None,
        litellm_call_info: dict[str, object] | None = None,
    ) -> dict[str, str] | None:
        """``x-ratetree-path``: the groups from the requested one down to the deployment
        that answered (the last attempt's, after a retry or fallback)."""
        path = metadata_value(data, PATH)
        return {"x-ratetree-path": path} if isinstance(path, str) else None


_CALLBACK: list[RatetreeProxy] = []


def _callback() -> RatetreeProxy:
    """The process's callback, (re)loaded from the proxy's current config."""
    if not _CALLBACK:
        _CALLBACK.append(RatetreeProxy())
    callback = _CALLBACK[0]
    try:
        callback.load(running_config())
    except ConfigError as err:
        log.error("ratetree: %s", err)
        raise
    return callback


def __getattr__(name: str) -> Any:
    # The proxy resolves "ratetree.integrations.litellm.proxy.ratetree_proxy" with getattr
    # each time it loads its config: that is when the tree is (re)built from it.
    if name == "ratetree_proxy":
        return _callback()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
