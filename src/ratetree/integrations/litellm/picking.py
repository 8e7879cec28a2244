"""The acquire of one pick: which group a request goes to and which deployments it must
avoid (:func:`target`), and the acquire itself, in the calling thread (:func:`acquire`)
or awaited (:func:`acquire_awaited`, for a scheduler on ``AsyncRedisState``)."""

from __future__ import annotations

from collections.abc import Callable

from ratetree.core.leases import Lease
from ratetree.errors import NoCapacity
from ratetree.integrations.litellm.refusals import bad_request
from ratetree.integrations.litellm.view import RouterView
from ratetree.scheduler import Scheduler


def target(
    view: RouterView,
    group: str,
    allowed: frozenset[str] | None,
    unknown: Callable[[str], Exception],
) -> tuple[str, frozenset[str]]:
    """The group to acquire on and the deployments it must not choose, for a request to
    ``group``; ``allowed`` (read against ``view``) are the deployments the Router lets it
    reach, or None. A request naming a deployment by its id goes to that deployment
    through its own group. Raises ``unknown(group)`` for a name nothing serves, and
    LiteLLM's BadRequestError for deployments the Router serves and ratetree does not
    know."""
    if group in view.resolve:
        name, only = group, None
    elif group in view.home:
        name, only = view.home[group], frozenset({group})
    elif (matched := view.match(group)) is not None:
        name, only = matched[0], None  # a wildcard group (openai/*): shares its limits
    else:
        raise unknown(group)
    reach = view.reach[view.resolve[name]]
    exclude: frozenset[str] = frozenset()
    if allowed is not None:
        if not allowed <= reach:
            names = ", ".join(sorted(allowed - reach))
            raise bad_request(
                f"the Router serves deployment(s) {names} for {group!r} that ratetree "
                "does not know (added to the Router after attach); add them with "
                "RatetreeRouting.reconfigure",
                group,
            )
        exclude = reach - allowed
    if only is not None:
        exclude |= reach - only
    return name, exclude


def acquire(
    scheduler: Scheduler,
    group: str,
    tokens: float,
    exclude: frozenset[str],
    failed: frozenset[str] | None,
) -> Lease:
    """Acquire avoiding the deployments that failed this request already, unless only
    they could take it now. Raises as ``Scheduler.acquire``."""
    if failed:
        try:
            return scheduler.acquire(group, tokens=tokens, exclude=exclude | failed)
        except NoCapacity:
            pass
    return scheduler.acquire(group, tokens=tokens, exclude=exclude)


async def acquire_awaited(
    scheduler: Scheduler,
    group: str,
    tokens: float,
    exclude: frozenset[str],
    failed: frozenset[str] | None,
) -> Lease:
    """:func:`acquire` through ``Scheduler.aacquire``: the event loop never blocks."""
    if failed:
        try:
            return await scheduler.aacquire(group, tokens=tokens, exclude=exclude | failed)
        except NoCapacity:
            pass
    return await scheduler.aacquire(group, tokens=tokens, exclude=exclude)
