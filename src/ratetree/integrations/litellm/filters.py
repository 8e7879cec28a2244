"""The deployments a LiteLLM Router's own filters let a request reach, asked the same way on
the async and the sync path: the Router's ``select(kind="healthy")`` (pre-call checks, tag
filtering, ``async_filter_deployments`` callbacks, its cooldowns, and whatever else the
installed Router applies before its strategy). Plain data and asyncio (no LiteLLM import).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine, Mapping
from typing import Any, NamedTuple, TypeVar

from ratetree.integrations.litellm.view import RouterView

_METADATA_KEYS = ("metadata", "litellm_metadata")
# A refused sync pick is not logged to the request by the Router (its own sync pick does not
# log one either); on a loop that stops right after, that log would never run anyway.
_SYNC_DROPS = ("litellm_logging_obj",)

T = TypeVar("T")


class Allowed(NamedTuple):
    """The deployments the Router lets a request reach, read against one view of the tree."""

    view: RouterView
    ids: frozenset[str]


async def allowed(
    router: Any,
    view: RouterView,
    group: str,
    request: Mapping[str, Any],
    messages: object,
    input: object,
) -> Allowed | None:
    """What the Router's filter chain lets through for ``group`` and this request, read on a
    copy of the request it may write to; None when no Router is attached. ``view`` is the
    tree the list is matched against. Raises what the Router raises when nothing passes."""
    if router is None:
        return None
    probe = dict(request)
    for name in _METADATA_KEYS:
        if isinstance(probe.get(name), dict):
            probe[name] = dict(probe[name])
    found = await router.select(group, probe, kind="healthy", messages=messages, input=input)
    listed = [found] if isinstance(found, Mapping) else found
    return Allowed(view, frozenset(str(d["model_info"]["id"]) for d in listed))


def allowed_sync(
    router: Any,
    view: RouterView,
    group: str,
    request: Mapping[str, Any],
    messages: object,
    input: object,
) -> Allowed | None:
    """:func:`allowed` for a sync pick, run to its end on this thread. Raises what it raises."""
    if router is None:
        return None
    probe = {key: value for key, value in request.items() if key not in _SYNC_DROPS}
    return run_blocking(allowed(router, view, group, probe, messages, input))


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end and return its result (raising what it raises): on a loop of
    its own on this thread, or, when a loop already runs on this thread (a sync call made
    from async code), on a thread of its own, with the caller's context variables."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = asyncio.new_event_loop()  # not set as the thread's loop: the caller's stays
        try:
            return loop.run_until_complete(coro)
        finally:
            loop.close()
    box: list[T] = []
    errors: list[BaseException] = []
    context = contextvars.copy_context()

    def run() -> None:
        try:
            box.append(context.run(asyncio.run, coro))
        except BaseException as err:  # handed to the caller, whatever it is
            errors.append(err)

    worker = threading.Thread(target=run, name="ratetree-sync-filters")
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return box[0]
