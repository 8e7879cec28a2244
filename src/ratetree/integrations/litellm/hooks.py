"""The two objects LiteLLM calls: the Router's custom routing strategy (every pick) and a
``CustomLogger`` (every attempt's outcome). Both only forward to a :class:`Routing`."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Mapping
from typing import Any, Protocol

from litellm.integrations.custom_logger import CustomLogger
from litellm.types.router import CustomRoutingStrategyBase

import litellm
from ratetree.integrations.litellm.reading import total_tokens


class Routing(Protocol):
    """What the hooks need from :class:`~ratetree.integrations.litellm.RatetreeRouting`."""

    async def pick_async(
        self, group: str, request: object, messages: object, input: object
    ) -> dict[str, Any]: ...

    def pick_sync(
        self, group: str, request: object, messages: object, input: object
    ) -> dict[str, Any]: ...

    def attempted(self, kwargs: Mapping[str, Any]) -> None: ...

    def stamp(self, kwargs: Mapping[str, Any], response: object) -> None: ...

    def succeeded(self, kwargs: Mapping[str, Any], response: object) -> None: ...

    def returned_sync(self, kwargs: Mapping[str, Any]) -> None: ...

    def failed(self, kwargs: Mapping[str, Any], exc: object) -> None: ...


def strategy_of(router: Any) -> object:
    """The custom routing strategy registered on ``router``, or None. LiteLLM keeps no getter
    for it: ``register_plugin`` puts the strategy's own sync pick in place of the Router's
    (wrapped with ``functools.wraps`` by some versions), so its owner is the strategy."""
    pick = getattr(router, "get_available_deployment", None)
    owner = getattr(inspect.unwrap(pick), "__self__", None) if callable(pick) else None
    return owner if isinstance(owner, CustomRoutingStrategyBase) else None


def listening(settler: CustomLogger) -> None:
    """Put ``settler`` back on ``litellm.callbacks`` when the list no longer holds it.

    LiteLLM's documented way to add a logger is ``litellm.callbacks = [handler]``, which
    drops whatever was registered before, the settling callback too: every lease would then
    stay open until ``lease_timeout``. A pick comes before the call reads the list, so
    checking at each pick keeps the call settled."""
    if not any(callback is settler for callback in litellm.callbacks):
        litellm.logging_callback_manager.add_litellm_callback(settler)


class Strategy(CustomRoutingStrategyBase):  # type: ignore[misc]
    """The Router's custom routing strategy: every pick is a ratetree acquire, made with
    ``settler`` listening."""

    def __init__(self, routing: Routing, settler: CustomLogger) -> None:
        self._routing = routing
        self._settler = settler

    async def async_get_available_deployment(
        self,
        model: str,
        messages: object = None,
        input: object = None,
        specific_deployment: object = False,
        request_kwargs: object = None,
    ) -> dict[str, Any]:
        listening(self._settler)
        return await self._routing.pick_async(model, request_kwargs, messages, input)

    def get_available_deployment(
        self,
        model: str,
        messages: object = None,
        input: object = None,
        specific_deployment: object = False,
        request_kwargs: object = None,
    ) -> dict[str, Any]:
        listening(self._settler)
        return self._routing.pick_sync(model, request_kwargs, messages, input)


class Settler(CustomLogger):  # type: ignore[misc]
    """Settles each attempt's lease from the first event that reports its outcome."""

    def __init__(self, routing: Routing) -> None:
        super().__init__()
        self._routing = routing
        # LiteLLM keeps one logger per class and public settings: a distinct public value
        # lets each RatetreeRouting in a process keep its own.
        self.ratetree_routing = uuid.uuid4().hex

    async def async_pre_call_deployment_hook(
        self, kwargs: dict[str, Any], call_type: object
    ) -> None:
        # As log_pre_api_call does; whichever comes first binds the attempt, the other is a no-op.
        self._routing.attempted(kwargs)

    async def async_post_call_success_deployment_hook(
        self, request_data: dict[str, Any], response: object, call_type: object
    ) -> None:
        # Before the caller gets the response: name the path on it. A stream passes by here
        # (on some LiteLLM versions) before its usage exists; its logging event settles it.
        self._routing.stamp(request_data, response)
        if total_tokens(response) is not None:
            self._routing.succeeded(request_data, response)

    async def async_post_call_failure_deployment_hook(
        self,
        request_data: Mapping[str, Any],
        exception: Exception,
        call_type: object,
        fallback_depth: int | None = None,
    ) -> None:
        self._routing.failed(request_data, exception)

    def log_pre_api_call(self, model: object, messages: object, kwargs: dict[str, Any]) -> None:
        # On the caller's thread before the call, sync calls and streams included: the one
        # event that tells the attempt's call id, by which path_of finds the path later.
        self._routing.attempted(kwargs)

    def log_post_api_call(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        # The one event a sync call reports on its own thread before it returns.
        self._routing.returned_sync(kwargs)

    async def async_log_success_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing.succeeded(kwargs, response_obj)

    async def async_log_failure_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing.failed(kwargs, kwargs.get("exception"))

    def log_success_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing.succeeded(kwargs, response_obj)

    def log_failure_event(
        self, kwargs: dict[str, Any], response_obj: object, start_time: object, end_time: object
    ) -> None:
        self._routing.failed(kwargs, kwargs.get("exception"))
