"""Let a real ``litellm.Router`` route every request through a ratetree :class:`Scheduler`.

Three lines wire it in::

    routing = RatetreeRouting.from_model_list(model_list)   # may contain group references
    router = Router(model_list=routing.model_list, model_group_alias=routing.model_group_alias)
    routing.attach(router)

How each request travels (the extension points of LiteLLM 1.109+; docs/litellm-router.md):

- ``attach`` registers a custom routing strategy (``Router.register_plugin``). The Router asks
  it for a deployment on every attempt; on the async path it first asks the Router which
  deployments its own filters let through (``select(kind="healthy")``), then acquires a lease
  among those and stamps a ticket for it on the request's metadata.
- ``attach`` also adds a ``CustomLogger``: its hooks and logging events settle the lease of
  the attempt they report, whichever arrives first (a sync call's on its own thread before
  it returns). What LiteLLM reports nothing about is settled anyway: a request whose task
  ended (a cancelled ``wait_for``) or that its task or thread left for another, a closed
  stream, the attempt before a new pick for the same request; last, ``lease_timeout``.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from ratetree.config.litellm import load_litellm
from ratetree.core.leases import Lease
from ratetree.core.validate import number
from ratetree.errors import ConfigError, NoCapacity, UnknownGroup
from ratetree.integrations.litellm.blocking import Loops
from ratetree.integrations.litellm.endpoints import Endpoints
from ratetree.integrations.litellm.filters import Allowed, allowed, allowed_sync
from ratetree.integrations.litellm.ledger import Ledger, Ticket
from ratetree.integrations.litellm.paths import Paths
from ratetree.integrations.litellm.pricing import priced, wants_prices
from ratetree.integrations.litellm.reading import (
    PATH,
    TICKET,
    TRIED,
    deployment_of,
    estimate_tokens,
    metadata_value,
    raw_answer,
    request_metadata,
    retry_after_of,
    served_as,
    set_hidden_param,
    ticket_of,
    total_tokens,
)
from ratetree.integrations.litellm.view import RouterView
from ratetree.scheduler import Clock, Scheduler

try:
    from litellm.router_api import ChangeSet

    import litellm
    import ratetree.integrations.litellm.picking as picking
    from ratetree.integrations.litellm.hooks import Settler, Strategy, strategy_of
    from ratetree.integrations.litellm.peeking import peek
    from ratetree.integrations.litellm.refusals import bad_request, no_capacity_error
except ImportError as err:
    raise ImportError(
        "ratetree.integrations.litellm needs LiteLLM: pip install 'ratetree[litellm]'"
    ) from err

__all__ = ["RatetreeRouting", "estimate_tokens"]

# Failures LiteLLM itself holds against a deployment; other 4xx are the request's fault.
_DEPLOYMENT_FAULTS = frozenset({401, 404, 408, 429})


class RatetreeRouting:
    """A :class:`Scheduler` wired into a ``litellm.Router``: build the Router with
    :attr:`model_list` and :attr:`model_group_alias`, then :meth:`attach` it.

    ``clock`` must be the scheduler's clock (it times ``lease_timeout``). ``estimate_tokens``
    maps the request's kwargs to the tokens reserved at acquire (default:
    :func:`estimate_tokens`). A lease nothing settled after ``lease_timeout`` seconds is
    released as if its estimate had been used. ``cool_last_deployment=False`` (LiteLLM's
    rule) records no failure against a deployment that is the only one its group reaches.
    Raises ConfigError when a deployment of the scheduler carries no LiteLLM model_list entry,
    ValueError for a ``lease_timeout`` that is not > 0.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        *,
        clock: Clock = time.monotonic,
        estimate_tokens: Callable[[Mapping[str, Any]], float] = estimate_tokens,
        lease_timeout: float = 600.0,
        cool_last_deployment: bool = False,
        rng: random.Random | None = None,
    ) -> None:
        number(lease_timeout, "lease_timeout", positive=True, error=ConfigError)
        self.scheduler = scheduler
        self._clock = clock
        self._estimate = estimate_tokens
        self._lease_timeout = lease_timeout
        self._cool_last = cool_last_deployment
        self._rng = rng if rng is not None else random.Random()  # draws what a peek would pick
        self._view = RouterView(scheduler.spec)
        self._lock = threading.Lock()  # a pick's acquire and entry against a reconfiguration
        self._ledger = Ledger.renewing(scheduler.state, clock)
        self._loops = Loops()  # sync picks run the Router's async filters on these
        self._paths = Paths()
        self._settler = Settler(self)
        self._strategy = Strategy(self, self._settler)
        self._router: Any = None
        self._endpoints: Endpoints | None = None
        self._previous: object = None

    @classmethod
    def from_model_list(
        cls,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
        group_strategies: object = None,
        routing_strategy_args: object = None,
        allowed_fails: int = 3,
        cooldown_time: float = 5.0,
        clock: Clock = time.monotonic,
        rng: Any = None,
        state: Any = None,
        estimate_tokens: Callable[[Mapping[str, Any]], float] = estimate_tokens,
        lease_timeout: float = 600.0,
        cool_last_deployment: bool = False,
    ) -> RatetreeRouting:
        """Build the scheduler with :meth:`Scheduler.from_litellm` (references allowed; a
        ``state`` such as :class:`ratetree.AsyncRedisState` shares the limits) and wrap it.
        Pass ``router_settings`` values (``routing_strategy``, ``model_group_alias``, ...)
        here, not to the Router. Raises ConfigError naming the offending entry. Cost-based
        routing prices deployments that name no per-token prices from LiteLLM's cost map."""
        if wants_prices(routing_strategy, group_strategies):
            model_list = priced(model_list)
        scheduler = Scheduler.from_litellm(
            model_list,
            model_group_alias=model_group_alias,
            routing_strategy=routing_strategy,
            group_limits=group_limits,
            group_strategies=group_strategies,
            routing_strategy_args=routing_strategy_args,
            allowed_fails=allowed_fails,
            cooldown_time=cooldown_time,
            clock=clock,
            rng=rng,
            state=state,
        )
        return cls(
            scheduler,
            clock=clock,
            estimate_tokens=estimate_tokens,
            lease_timeout=lease_timeout,
            cool_last_deployment=cool_last_deployment,
            rng=rng,
        )

    @property
    def model_list(self) -> list[dict[str, Any]]:
        """A fresh model_list for ``Router(model_list=...)``: every group (umbrella groups
        too) as a model group listing every deployment it reaches, each deployment under its
        ratetree id as ``model_info.id``; no reference entries, no ``order``."""
        return self._view.model_list

    @property
    def model_group_alias(self) -> dict[str, Any]:
        """For ``Router(model_group_alias=...)``: the configured aliases."""
        return dict(self._view.aliases)

    @property
    def open_leases(self) -> int:
        """Leases handed to the Router and not settled yet."""
        return len(self._ledger)

    def attach(self, router: Any) -> None:
        """Make ``router`` route through ratetree: register the routing strategy on it (its
        ``register_plugin``) and add the settling callback to LiteLLM's callbacks. Raises
        RuntimeError when already attached."""
        if self._router is not None:
            raise RuntimeError("this RatetreeRouting is attached already; detach() it first")
        self._previous = strategy_of(router)  # detach() puts it back
        router.register_plugin(self._strategy)
        # responses name their path; closing a stream ends its request
        self._endpoints = Endpoints(router, self.path_of, self._ledger.closed)
        litellm.logging_callback_manager.add_litellm_callback(self._settler)
        self._router = router

    def detach(self) -> None:
        """Give the Router back its previous routing strategy, take the settling callback off
        LiteLLM's callbacks and release every lease still open."""
        router, self._router = self._router, None
        if router is not None:
            assert self._endpoints is not None  # set with the router
            self._endpoints.restore()
            if self._previous is not None:
                router.register_plugin(self._previous)
            else:
                router.routing_strategy_init(
                    router.settings().routing_strategy, router.routing_strategy_args
                )
            self._previous = None
        litellm.logging_callback_manager.remove_callback_from_all_lists(
            self._settler, require_self=False
        )
        for lease in self._ledger.drain():
            lease.release()
        self._loops.close()

    def reconfigure(
        self,
        model_list: object,
        *,
        model_group_alias: object = None,
        routing_strategy: object = "simple-shuffle",
        group_limits: object = None,
        group_strategies: object = None,
        routing_strategy_args: object = None,
    ) -> None:
        """Switch the scheduler and the attached Router's deployments and aliases to
        ``model_list`` together. Leases granted before settle on what they were granted on;
        a pick racing the switch sees the old tree or the new one whole. Raises ConfigError
        naming the offending entry, changing nothing."""
        if wants_prices(routing_strategy, group_strategies):
            model_list = priced(model_list)
        spec = load_litellm(
            model_list,
            model_group_alias=model_group_alias,
            routing_strategy=routing_strategy,
            group_limits=group_limits,
            group_strategies=group_strategies,
            routing_strategy_args=routing_strategy_args,
        )
        view = RouterView(spec)
        with self._lock:
            self.scheduler.reconfigure(spec)
            self._view = view
            router = self._router
            if router is not None:
                router.set_model_list(view.model_list)
                router.apply(ChangeSet(assign={"model_group_alias": dict(view.aliases)}))

    # -- the strategy calls these -----------------------------------------------------------

    async def pick_async(
        self, group: str, request_kwargs: object, messages: object, input: object
    ) -> dict[str, Any]:
        request = request_kwargs if isinstance(request_kwargs, dict) else {}
        trace = request.get("litellm_trace_id")
        # The Router's own filters first; a reconfiguration meanwhile makes the list narrow nothing.
        passing = await allowed(self._router, self._view, group, request, messages, input)
        if trace is None:  # asked outside a call (get_available_deployment): hold nothing
            return self._peek(group, request, messages, input, passing)
        owner = asyncio.current_task()
        try:
            return await self._take_awaited(group, request, trace, owner, passing, messages, input)
        except NoCapacity as err:
            if not len(self._ledger):
                raise no_capacity_error(err) from None
        # A stream read to its end is settled by a task it scheduled as it ended: let it run.
        await asyncio.sleep(0)
        try:
            return await self._take_awaited(group, request, trace, owner, passing, messages, input)
        except NoCapacity as err:
            raise no_capacity_error(err) from None

    def pick_sync(
        self, group: str, request_kwargs: object, messages: object, input: object
    ) -> dict[str, Any]:
        request = request_kwargs if isinstance(request_kwargs, dict) else {}
        trace = request.get("litellm_trace_id")
        passing = allowed_sync(
            self._loops, self._router, self._view, group, request, messages, input
        )
        if trace is None:
            return self._peek(group, request, messages, input, passing)
        try:
            return self._take(
                group, request, trace, threading.get_ident(), passing, messages, input
            )
        except NoCapacity as err:
            raise no_capacity_error(err) from None

    def _target(
        self, view: RouterView, group: str, allowed: Allowed | None
    ) -> tuple[str, frozenset[str]]:
        # A list read before a reconfiguration describes the old tree: it narrows nothing.
        ids = allowed.ids if allowed is not None and allowed.view is view else None
        return picking.target(view, group, ids, self._unknown)

    def _unknown(self, group: str) -> Exception:
        router = self._router
        if router is not None and group in router.registry().names(kind="group_set"):
            return bad_request(
                f"model {group!r} was added to the Router after attach and ratetree does not "
                "route it; add it with RatetreeRouting.reconfigure",
                group,
            )
        return bad_request(str(UnknownGroup(group)), group)

    def _tokens(self, request: dict[str, Any], messages: object, input: object) -> float:
        # Some LiteLLM versions pass the prompt beside the kwargs rather than in them.
        prompt = {"messages": messages, "input": input}
        return self._estimate({**prompt, **request} if request else prompt)

    def _peek(
        self,
        group: str,
        request: dict[str, Any],
        messages: object,
        input: object,
        allowed: Allowed | None,
    ) -> dict[str, Any]:
        """What a pick would choose now, holding nothing (no call follows it)."""
        tokens = self._tokens(request, messages, input)
        with self._lock:
            view = self._view
            name, exclude = self._target(view, group, allowed)
            return peek(self.scheduler, view, name, exclude, tokens, group, self._rng)

    def _open(
        self, request: dict[str, Any], trace: object, owner: Hashable
    ) -> tuple[float, frozenset[str] | None]:
        """Settle what a new pick makes over; now, and the deployments this request failed on."""
        metadata = request_metadata(request)
        now = self._clock()
        for lease in self._ledger.expired(now - self._lease_timeout):
            lease.release()
        # Picking again for the same request: the attempt before ended without success.
        orphan = self._ledger.orphan(metadata.get(TICKET), trace)
        if orphan is not None:
            orphan.release(tokens=0)
        # The owner's other requests are over: it runs one at a time (a stream aside).
        for lease in self._ledger.left_over(owner, trace):
            lease.release()
        tried = metadata.get(TRIED)
        failed = frozenset(tried[1]) if isinstance(tried, tuple) and tried[0] == trace else None
        return now, failed

    def _take(
        self,
        group: str,
        request: dict[str, Any],
        trace: object,
        owner: Hashable,
        allowed: Allowed | None,
        messages: object,
        input: object,
    ) -> dict[str, Any]:
        """Acquire for one attempt of a request and file its lease. Raises NoCapacity, and
        LiteLLM's BadRequestError for a name or size no group can take."""
        now, failed = self._open(request, trace, owner)
        try:
            tokens = self._tokens(request, messages, input)
            with self._lock:  # the view and the tree read together
                view = self._view
                name, exclude = self._target(view, group, allowed)
                lease = picking.acquire(self.scheduler, name, tokens, exclude, failed)
                entry = view.entry(name, lease.deployment_id, group)
        except ValueError as err:  # a token estimate no path of the group could ever hold
            raise bad_request(str(err), group) from None
        return self._file(lease, entry, request, trace, owner, now, failed)

    async def _take_awaited(
        self,
        group: str,
        request: dict[str, Any],
        trace: object,
        owner: Hashable,
        allowed: Allowed | None,
        messages: object,
        input: object,
    ) -> dict[str, Any]:
        """:meth:`_take`, awaited; a lease granted across a reconfiguration is given back."""
        now, failed = self._open(request, trace, owner)
        try:
            tokens = self._tokens(request, messages, input)
            while True:
                view = self._view
                name, exclude = self._target(view, group, allowed)
                lease = await picking.acquire_awaited(self.scheduler, name, tokens, exclude, failed)
                with self._lock:
                    entry = view.entry(name, lease.deployment_id, group)
                    if self._view is view:
                        break
                lease.release(tokens=0)
        except ValueError as err:
            raise bad_request(str(err), group) from None
        return self._file(lease, entry, request, trace, owner, now, failed)

    def _file(
        self,
        lease: Lease,
        entry: dict[str, Any] | None,
        request: dict[str, Any],
        trace: object,
        owner: Hashable,
        now: float,
        failed: frozenset[str] | None,
    ) -> dict[str, Any]:
        """File a pick's lease in the ledger and stamp its ticket on the request."""
        assert entry is not None  # the view and the tree changed together, under the lock
        metadata = request_metadata(request)
        stream = request.get("stream") is True
        key, new_owner = self._ledger.add(Ticket(lease, trace, now, owner, stream))
        metadata[TICKET] = key
        metadata[TRIED] = (trace, (*(failed or ()), lease.deployment_id))
        metadata[PATH] = " > ".join(lease.path)
        if new_owner and isinstance(owner, asyncio.Task):
            owner.add_done_callback(self._task_done)
        return entry

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        # The task ended (returned, raised or was cancelled): what it still holds is over.
        for lease in self._ledger.owner_done(task):
            lease.release()

    # -- the callbacks call these -----------------------------------------------------------

    def path_of(self, response: object) -> str | None:
        """The path ratetree chose for the attempt that gave ``response`` (any response of
        the Router: sync or async, a stream's wrapper, embeddings, text completions), as
        ``"<requested group> > <sub-group> > ... > <deployment id>"``; None when ratetree did
        not route it. Read from the response when ratetree saw it before the caller, else
        from its call id, else (a sync embedding LiteLLM answered itself) from its
        ``model_id`` and the group it was served as, on the tree as it is now."""
        found = self._paths.of(response)
        if found is None:
            route = self._view.route(*served_as(response))
            found = None if route is None else " > ".join(route)
        return found

    def attempted(self, kwargs: Mapping[str, Any]) -> None:
        self._paths.note(kwargs.get("litellm_call_id"), metadata_value(kwargs, PATH))
        self._ledger.bind(ticket_of(kwargs), kwargs.get("litellm_call_id"), deployment_of(kwargs))

    def _claim(self, kwargs: Mapping[str, Any]) -> Ticket | None:
        return self._ledger.claim(
            ticket_of(kwargs), kwargs.get("litellm_call_id"), deployment_of(kwargs)
        )

    def _finished(self, ticket: Ticket, tokens: float | None) -> None:
        """Release a successful attempt with its real token count and how long it took
        from the pick (the latency-based strategy's measure; the others ignore it)."""
        latency = max(0.0, self._clock() - ticket.opened)
        ticket.lease.release(tokens=tokens, latency=latency)

    def stamp(self, kwargs: Mapping[str, Any], response: object) -> None:
        path = metadata_value(kwargs, PATH)
        if isinstance(path, str):
            set_hidden_param(response, PATH, path)

    def succeeded(self, kwargs: Mapping[str, Any], response: object) -> None:
        self.stamp(kwargs, response)
        ticket = self._claim(kwargs)
        if ticket is not None:
            self._finished(ticket, total_tokens(response))

    def returned_sync(self, kwargs: Mapping[str, Any]) -> None:
        answer = raw_answer(kwargs)
        if answer is None:  # an error logged on its way out: its failure event settles it
            return
        ticket = self._ledger.returned(
            ticket_of(kwargs), deployment_of(kwargs), threading.get_ident()
        )
        if ticket is not None:
            self._finished(ticket, total_tokens(answer))

    def failed(self, kwargs: Mapping[str, Any], exc: object) -> None:
        ticket = self._claim(kwargs)
        if ticket is None:
            return
        lease = ticket.lease
        status = getattr(exc, "status_code", None)
        if not self._cool_last and self._view.alone(lease.group):
            lease.release(tokens=0)  # LiteLLM never cools a group's only deployment
        elif status == 429 and isinstance(exc, BaseException):
            lease.fail(retry_after=retry_after_of(exc))
        elif not isinstance(status, int) or status in _DEPLOYMENT_FAULTS or status >= 500:
            lease.fail()  # timeouts, connection errors, 5xx: the scheduler's failure policy
        else:
            lease.release(tokens=0)  # the request's own fault (400, 413, ...): not the deployment's

    def abandoned(self, kwargs: Mapping[str, Any]) -> None:
        """The client went away mid-stream: release its last attempt's lease now (as if its
        estimate was used), whatever LiteLLM still reads from the provider afterwards."""
        ticket = self._ledger.take(ticket_of(kwargs))
        if ticket is not None:
            ticket.lease.release()
