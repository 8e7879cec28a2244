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
  request, so a Router the proxy rebuilt later is attached before it routes, and one whose
  deployments changed (``/model/new``, the database) has the tree rebuilt to match.
- ``async_post_call_response_headers_hook`` names the path each answer took and counts the
  admission; ``async_post_call_failure_hook`` counts ratetree's refusals (metrics.py).
- ``async_post_call_streaming_iterator_hook`` wraps the stream the client reads: when the
  client hangs up, the request's lease is released then, not when the provider's stream
  ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

import yaml

from ratetree.errors import ConfigError
from ratetree.integrations.litellm.metrics import REFRESH, proxy_metrics, refusal_reason
from ratetree.integrations.litellm.proxy_additions import RouterDeployments
from ratetree.integrations.litellm.proxy_settings import ProxySettings, read_proxy_settings
from ratetree.integrations.litellm.proxy_workers import first_among_workers
from ratetree.integrations.litellm.proxy_workers import workers as proxy_workers
from ratetree.integrations.litellm.reading import PATH, metadata_value, retry_after_of
from ratetree.integrations.litellm.routing import RatetreeRouting

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


def _shared_state(url: str, prefix: str) -> Any:
    """The Redis state the workers share: an asyncio one, since the proxy picks on its
    event loop. Raises ConfigError when Redis does not answer a PING: the state fails
    closed, so a proxy started without it would refuse every request (the state's own
    check at construction takes an outage for a passing one and only warns)."""
    from ratetree.state.redis_async import AsyncRedisState
    from ratetree.state.redis_settings import open_client

    probe = open_client(url, 1.0)
    try:
        probe.ping()
    except Exception as err:  # redis' errors, and what a broken URL raises on connect
        where = re.sub(r"//[^@/]*@", "//***@", url)  # no password in the log
        raise ConfigError(
            f"router_settings Redis {where} does not answer ({err}); ratetree fails closed "
            "without it, so the proxy would refuse every request"
        ) from None
    finally:
        probe.close()
    return AsyncRedisState(url, prefix=prefix)


def _build(settings: ProxySettings) -> RatetreeRouting:
    state = None
    if settings.redis_url is not None:
        state = _shared_state(settings.redis_url, f"proxy-{settings.digest}")
    return RatetreeRouting.from_model_list(
        settings.model_list,
        **settings.tree_settings(),
        allowed_fails=settings.allowed_fails,
        cooldown_time=settings.cooldown_time,
        state=state,
    )


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


class RatetreeProxy(CustomLogger):  # type: ignore[misc]
    """The proxy callback: holds the tree built from the proxy's config and keeps the
    proxy's current Router attached to it. One per process (``ratetree_proxy``)."""

    def __init__(self, *, notices: str | None = None) -> None:
        super().__init__()
        self._notices = notices  # where workers agree who says a startup line (default: tmp)
        self.routing: RatetreeRouting | None = None
        self._digest: str | None = None
        self._router: Any = None  # the Router attached to, compared by identity
        self._seen: object = None  # its registry version when ratetree last matched it
        self._settings: ProxySettings | None = None
        self._deployments = RouterDeployments([])
        self._watch: asyncio.Task[None] | None = None
        self._gauges: asyncio.Task[None] | None = None

    def load(self, config: Mapping[str, Any], *, workers: int | None = None) -> None:
        """Build the tree from a proxy config; the Router the proxy builds next is attached
        to it. The same config again keeps the tree and its state. ``workers`` is the
        number of proxy workers (default: ``NUM_WORKERS``, which ``litellm`` sets); with
        several and no Redis, the first of them logs one warning. Raises ConfigError for an
        invalid config (naming the entry at fault) or a Redis that does not answer, and
        keeps the tree it had."""
        settings = read_proxy_settings(config, deployment_id)
        if settings.digest == self._digest:
            return
        routing = _build(settings)
        if self.routing is not None:
            self.routing.detach()
        self.routing, self._digest, self._router = routing, settings.digest, None
        aliases = settings.model_group_alias
        self._settings = settings
        self._deployments = RouterDeployments(
            settings.model_list, aliases if isinstance(aliases, Mapping) else ()
        )
        scheduler = routing.scheduler
        _NOISE.names = frozenset(scheduler.groups) | frozenset(scheduler.spec.aliases)
        logging.getLogger("LiteLLM Router").addFilter(_NOISE)  # once: a Filter is kept once
        workers = proxy_workers() if workers is None else workers
        if (
            settings.redis_url is None
            and workers > 1
            and first_among_workers(f"no-redis-{settings.digest}", self._notices)
        ):
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
        if self._gauges is None and proxy_metrics() is not None:
            self._gauges = loop.create_task(self._refresh_gauges())

    async def _refresh_gauges(self) -> None:
        """Keep the metrics' gauges current, for as long as the proxy runs."""
        metrics = proxy_metrics()
        while metrics is not None:
            await asyncio.sleep(REFRESH)
            if self.routing is not None:
                try:
                    metrics.refresh(self.routing.scheduler)
                except Exception:  # a gauge is not worth a worker: say so and go on
                    log.exception("ratetree: refreshing the metrics failed")

    async def _attach_when_published(self) -> None:
        """Attach the Router as soon as the proxy publishes it, during its startup."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + ATTACH_WAIT
        while loop.time() < give_up:
            if self.attached():
                return
            await asyncio.sleep(_POLL)

    def attached(self) -> bool:
        """Attach the proxy's current Router if it is new, and follow the changes to its
        deployments since ratetree last matched them; False while it has none."""
        router = getattr(_proxy_server(), "llm_router", None)
        if router is None or self.routing is None:
            return False
        if router is not self._router:
            self.attach(router)
        else:
            self.follow(router)
        return True

    def follow(self, router: Any) -> None:
        """If the attached ``router``'s deployments changed since ratetree last matched
        them, rebuild the tree to match (see :meth:`_follow`)."""
        if router.registry().version != self._seen:
            self._follow(router.registry().all(), always=True)
            self._seen = router.registry().version

    def attach(self, router: Any) -> None:
        """Give ``router`` the tree's view of the deployments (every group, umbrella groups
        too, listing every deployment it reaches, under the ids the proxy gave them) and
        the configured aliases, and route its picks through the tree. Deployments the
        Router has beside the config's (from the proxy's database) join the tree first."""
        routing = self.routing
        if routing is None:
            raise RuntimeError("RatetreeProxy.attach before load")
        self._follow(router.registry().all(), always=False)
        router.set_model_list(routing.model_list)
        router.apply(ChangeSet(assign={"model_group_alias": routing.model_group_alias}))
        routing.attach(router)
        self._router, self._seen = router, router.registry().version

    def _follow(self, listed: list[Any], *, always: bool) -> None:
        """Rebuild the tree from the config's deployments as the Router lists them now
        (added, updated, deleted ones: ``/model/new``, the database), and hand the attached
        Router the view again (``always``: also when no deployment changed, since whoever
        changed the Router may have dropped the umbrella groups). A change that makes a
        config ratetree cannot use is logged and leaves the tree as it was: requests to
        the deployments it cannot route are refused, saying so."""
        routing, settings = self.routing, self._settings
        shown = routing.model_list if routing is not None and always else []
        changed = self._deployments.update(listed, shown)
        if routing is None or settings is None or not (changed or always):
            return
        try:
            routing.reconfigure(self._deployments.model_list, **settings.tree_settings())
        except ConfigError as err:
            log.error(
                "ratetree: the proxy's deployments changed and ratetree cannot route them: %s", err
            )

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

    async def async_post_call_streaming_iterator_hook(
        self, user_api_key_dict: object, response: AsyncIterator[Any], request_data: dict[str, Any]
    ) -> AsyncGenerator[Any, None]:
        """Pass a stream on to the client. When the client goes away mid-stream (the proxy
        closes this generator, or cancels the task reading it), release the request's lease
        at once: LiteLLM may go on reading the provider's stream to its end, but the
        capacity ratetree holds follows the client."""
        try:
            async for chunk in response:
                yield chunk
        except (GeneratorExit, asyncio.CancelledError):
            if self.routing is not None:
                self.routing.abandoned(request_data)
            raise

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
        if not isinstance(path, str) or isinstance(response, BaseException):
            return None
        metrics = proxy_metrics()
        if metrics is not None:
            metrics.admitted.labels(path.split(" > ", 1)[0]).inc()
        return {"x-ratetree-path": path}

    async def async_post_call_failure_hook(
        self,
        request_data: dict[str, Any],
        original_exception: Exception,
        user_api_key_dict: object,
        traceback_str: str | None = None,
    ) -> None:
        """Count a refusal of ratetree's (its 429) in the metrics."""
        metrics, routing = proxy_metrics(), self.routing
        if metrics is None or routing is None:
            return
        if getattr(original_exception, "llm_provider", None) != "ratetree":
            return
        if getattr(original_exception, "status_code", None) != 429:
            return
        group = getattr(original_exception, "model", None)
        if not isinstance(group, str) or group not in routing.scheduler.groups:
            return
        retry_after = retry_after_of(original_exception)
        explanation = None if retry_after is None else routing.scheduler.explain(group)
        reason = refusal_reason(retry_after, str(original_exception), explanation)
        metrics.refused.labels(group, reason).inc()


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
