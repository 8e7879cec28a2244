"""Let a real ``litellm.Router`` route every request through a ratetree :class:`Scheduler`.

Three lines wire it in::

    routing = RatetreeRouting.from_model_list(model_list)   # may contain group references
    router = Router(model_list=routing.model_list, model_group_alias=routing.model_group_alias)
    routing.attach(router)

How each request travels (the extension points of LiteLLM 1.109+):

- ``attach`` registers a custom routing strategy (``Router.register_plugin``, which the older
  ``set_custom_routing_strategy`` now forwards to). The Router asks it for a deployment on
  every attempt, whatever group name was requested; it acquires a lease from the scheduler
  and stamps a ticket for it on the request's metadata.
- ``attach`` also adds a ``CustomLogger`` to LiteLLM's callbacks. Its per-attempt hooks
  (``async_pre_call_deployment_hook``, ``async_post_call_success_deployment_hook``,
  ``async_post_call_failure_deployment_hook``) and its logging events (success and failure,
  async and sync) settle the lease of the attempt they report, whichever arrives first.
- A lease nothing reported on is settled anyway: when the Router picks again for the same
  request (a retry or fallback whose failure no hook reported), and, as a last resort, when
  it has been open ``lease_timeout`` seconds (a stream the caller abandoned reports nothing).
"""

from __future__ import annotations

import copy
import math
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from ratetree.core.leases import Lease
from ratetree.core.specs import TreeSpec
from ratetree.errors import ConfigError, NoCapacity, UnknownGroup
from ratetree.integrations.litellm.ledger import Ledger, Ticket
from ratetree.integrations.litellm.reading import (
    PATH,
    TICKET,
    deployment_of,
    estimate_tokens,
    request_metadata,
    retry_after_of,
    ticket_of,
    total_tokens,
)
from ratetree.scheduler import Clock, Scheduler

try:
    import httpx
    from litellm.integrations.custom_logger import CustomLogger
    from litellm.types.router import CustomRoutingStrategyBase

    import litellm
except ImportError as err:
    raise ImportError(
        "ratetree.integrations.litellm needs LiteLLM: pip install 'ratetree[litellm]'"
    ) from err

__all__ = ["RatetreeRouting", "estimate_tokens"]

# Failures LiteLLM itself holds against a deployment; other 4xx are the request's fault.
_DEPLOYMENT_FAULTS = frozenset({401, 404, 408, 429})


def _no_capacity_error(err: NoCapacity) -> Exception:
    """LiteLLM's RateLimitError (status 429) with the wait as a ``retry-after`` header, which
    the proxy passes on to its client."""
    headers = {}
    if err.retry_after is not None:
        headers["retry-after"] = str(math.ceil(err.retry_after))
        # Rounded up too, past float noise (7.0 - 6.999 is 0.0010000000000003 s, not 2 ms).
        headers["retry-after-ms"] = str(math.ceil(round(err.retry_after * 1000, 6)))
    response = httpx.Response(
        429, headers=headers, request=httpx.Request("POST", "https://ratetree.invalid")
    )
    return litellm.RateLimitError(  # type: ignore[no-any-return]
        message=f"ratetree: {err}",
        llm_provider="ratetree",
        model=err.group,
        response=response,
        headers=headers or None,
        # Not to be retried: the tree has no capacity for it anywhere (a Router retrying it
        # would sleep the Retry-After and ask again, holding the caller that long).
        num_retries=0,
    )


def _bad_request(message: str, group: str) -> Exception:
    return litellm.BadRequestError(  # type: ignore[no-any-return]
        message=f"ratetree: {message}", model=group, llm_provider="ratetree"
    )


def _router_view(spec: TreeSpec) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The model_list a Router can serve (the deployments, each with its ratetree id as
    ``model_info.id``) and the aliases that make groups without deployments of their own
    known names (a proxy refuses a model it does not know before routing)."""
    model_list: list[dict[str, Any]] = []
    for deployment in spec.deployments:
        entry = deployment.payload
        if not isinstance(entry, Mapping):
            raise ConfigError(
                f"deployment {deployment.id!r} carries no model_list entry; build the "
                "scheduler with Scheduler.from_litellm"
            )
        entry = copy.deepcopy(dict(entry))
        info = entry.get("model_info")
        entry["model_info"] = {**(info if isinstance(info, Mapping) else {}), "id": deployment.id}
        model_list.append(entry)

    groups = {group.name: group for group in spec.groups}
    # A deployment shared by several groups is one Router entry, under its first group.
    served = {entry["model_name"] for entry in model_list}

    def served_name(name: str) -> str:
        # The nearest group at or below `name` that the Router has deployments for.
        seen: set[str] = set()
        queue = [name]
        while queue:
            current = queue.pop(0)
            if current in served:
                return current
            if current not in seen:
                seen.add(current)
                queue.extend(m.group for m in groups[current].members if m.group is not None)
        raise AssertionError(f"group {name!r} reaches no deployment")  # a valid spec can't

    aliases: dict[str, Any] = {}
    for name in groups:
        target = served_name(name)
        if target != name:
            aliases[name] = target
    for alias, group in spec.aliases.items():
        target = served_name(group)
        aliases[alias] = {"model": target, "hidden": True} if alias in spec.hidden else target
    return model_list, aliases


class _Strategy(CustomRoutingStrategyBase):  # type: ignore[misc]
    """The Router's custom routing strategy: every pick is a ratetree acquire."""

    def __init__(self, routing: RatetreeRouting) -> None:
        self._routing = routing

    async def async_get_available_deployment(
        self,
        model: str,
        messages: object = None,
        input: object = None,
        specific_deployment: object = False,
        request_kwargs: object = None,
    ) -> dict[str, Any]:
        return self._routing._pick(model, request_kwargs, messages, input)

    def get_available_deployment(
        self,
        model: str,
        messages: object = None,
        input: object = None,
        specific_deployment: object = False,
        request_kwargs: object = None,
    ) -> dict[str, Any]:
        return self._routing._pick(model, request_kwargs, messages, input)


class _Settler(CustomLogger):  # type: ignore[misc]
    """Settles each attempt's lease from the first event that reports its outcome."""

    def __init__(self, routing: RatetreeRouting) -> None:
        super().__init__()
        self._routing = routing
        # LiteLLM keeps one logger per class and public settings: a distinct public value
        # lets each RatetreeRouting in a process keep its own.
        self.ratetree_routing = uuid.uuid4().hex

    async def async_pre_call_deployment_hook(
        self, kwargs: dict[str, Any], call_type: object
    ) -> None:
        self._routing._ledger.bind(
            ticket_of(kwargs), kwargs.get("litellm_call_id"), deployment_of(kwargs)
        )

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: object, call_type: object
    ) -> None:
        # A stream passes by here before its usage exists; its logging event settles it.
        if total_tokens(response) is not None:
            self._routing._succeeded(request_data, response)

    async def async_post_call_failure_deployment_hook(
        self,
        request_data: Mapping[str, Any],
        exception: Exception,
        call_type: object,
        fallback_depth: int | None = None,
    ) -> None:
        self._routing._failed(request_data, exception)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing._succeeded(kwargs, response_obj)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing._failed(kwargs, kwargs.get("exception"))

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing._succeeded(kwargs, response_obj)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing._failed(kwargs, kwargs.get("exception"))


class RatetreeRouting:
    """A :class:`Scheduler` wired into a ``litellm.Router``: build the Router with
    :attr:`model_list` and :attr:`model_group_alias`, then :meth:`attach` it.

    ``clock`` must be the scheduler's clock (it times ``lease_timeout``). ``estimate_tokens``
    maps the request's kwargs to the tokens reserved at acquire (default:
    :func:`estimate_tokens`). A lease still open after ``lease_timeout`` seconds, which only
    happens when LiteLLM reported nothing about its attempt (say, a stream the caller
    stopped reading), is released as if its estimate had been used. Raises ConfigError when
    a deployment of the scheduler carries no LiteLLM model_list entry.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        clock: Clock = time.monotonic,
        estimate_tokens: Callable[[Mapping[str, Any]], float] = estimate_tokens,
        lease_timeout: float = 600.0,
    ) -> None:
        if not lease_timeout > 0:
            raise ValueError(f"lease_timeout must be > 0 seconds, got {lease_timeout!r}")
        self.scheduler = scheduler
        self._clock = clock
        self._estimate = estimate_tokens
        self._lease_timeout = lease_timeout
        self._model_list, self._aliases = _router_view(scheduler.spec)
        self._entries = {entry["model_info"]["id"]: entry for entry in self._model_list}
        self._ledger = Ledger()
        self._strategy = _Strategy(self)
        self._settler = _Settler(self)

    @classmethod
    def from_model_list(
        cls,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
        allowed_fails: int = 3,
        cooldown_time: float = 5.0,
        clock: Clock = time.monotonic,
        rng: Any = None,
        estimate_tokens: Callable[[Mapping[str, Any]], float] = estimate_tokens,
        lease_timeout: float = 600.0,
    ) -> RatetreeRouting:
        """Build the scheduler with :meth:`Scheduler.from_litellm` (references allowed) and
        wrap it. Pass the proxy's ``router_settings`` values (``routing_strategy``,
        ``model_group_alias``, ``allowed_fails``, ``cooldown_time``) here, not to the Router.
        Raises ConfigError naming the offending entry."""
        scheduler = Scheduler.from_litellm(
            model_list,
            model_group_alias=model_group_alias,
            routing_strategy=routing_strategy,
            group_limits=group_limits,
            allowed_fails=allowed_fails,
            cooldown_time=cooldown_time,
            clock=clock,
            rng=rng,
        )
        return cls(
            scheduler, clock=clock, estimate_tokens=estimate_tokens, lease_timeout=lease_timeout
        )

    @property
    def model_list(self) -> list[dict[str, Any]]:
        """A fresh copy of the deployments for ``Router(model_list=...)``: no reference
        entries, each deployment with its ratetree id as ``model_info.id``."""
        return copy.deepcopy(self._model_list)

    @property
    def model_group_alias(self) -> dict[str, Any]:
        """For ``Router(model_group_alias=...)``: every group without deployments of its own
        (like ``fast``) and every configured alias, as an alias the Router knows. The
        requested name still reaches ratetree, which routes it over the whole group."""
        return copy.deepcopy(self._aliases)

    @property
    def open_leases(self) -> int:
        """Leases handed to the Router and not settled yet."""
        return len(self._ledger)

    def attach(self, router: Any) -> None:
        """Make ``router`` route through ratetree: register the routing strategy on it (its
        ``register_plugin``, or ``set_custom_routing_strategy`` where that is all there is)
        and add the settling callback to LiteLLM's callbacks, once."""
        register = getattr(router, "register_plugin", None) or router.set_custom_routing_strategy
        register(self._strategy)
        litellm.logging_callback_manager.add_litellm_callback(self._settler)

    def detach(self) -> None:
        """Take the settling callback off every LiteLLM callback list; leases still open stay
        so (let their requests finish first)."""
        litellm.logging_callback_manager.remove_callback_from_all_lists(
            self._settler, require_self=False
        )

    # -- the strategy and the callbacks call these ------------------------------------------

    def _pick(
        self, group: str, request_kwargs: object, messages: object, input: object
    ) -> dict[str, Any]:
        request: dict[str, Any] = request_kwargs if isinstance(request_kwargs, dict) else {}
        metadata = request_metadata(request)
        now = self._clock()
        for lease in self._ledger.expired(now - self._lease_timeout):
            lease.release()
        # Picking again for the same request: the attempt before ended without success.
        orphan = self._ledger.orphan(metadata.get(TICKET), request.get("litellm_trace_id"))
        if orphan is not None:
            orphan.release(tokens=0)
        try:
            # Some LiteLLM versions pass the prompt beside the kwargs rather than in them.
            prompt = {"messages": messages, "input": input}
            tokens = self._estimate({**prompt, **request} if request else prompt)
            lease = self.scheduler.acquire(group, tokens=tokens)
        except NoCapacity as err:
            raise _no_capacity_error(err) from None
        except UnknownGroup as err:
            raise _bad_request(str(err), group) from None
        except ValueError as err:  # a token estimate no path of the group could ever hold
            raise _bad_request(str(err), group) from None
        metadata[TICKET] = self._ledger.add(Ticket(lease, request.get("litellm_trace_id"), now))
        metadata[PATH] = " > ".join(lease.path)  # the proxy's x-ratetree-path header
        return copy.deepcopy(self._entries[lease.deployment_id])  # the Router may write to it

    def _claim(self, kwargs: Mapping[str, Any]) -> Lease | None:
        return self._ledger.claim(
            ticket_of(kwargs), kwargs.get("litellm_call_id"), deployment_of(kwargs)
        )

    def _succeeded(self, kwargs: Mapping[str, Any], response: object) -> None:
        lease = self._claim(kwargs)
        if lease is not None:
            lease.release(tokens=total_tokens(response))

    def _failed(self, kwargs: Mapping[str, Any], exc: object) -> None:
        lease = self._claim(kwargs)
        if lease is None:
            return
        status = getattr(exc, "status_code", None)
        if status == 429 and isinstance(exc, BaseException):
            lease.fail(retry_after=retry_after_of(exc))
        elif not isinstance(status, int) or status in _DEPLOYMENT_FAULTS or status >= 500:
            lease.fail()  # timeouts, connection errors, 5xx: the scheduler's failure policy
        else:
            lease.release(tokens=0)  # the request's own fault (400, 413, ...): not the deployment's
