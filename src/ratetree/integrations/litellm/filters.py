"""The deployments a LiteLLM Router's own filters let a request reach, asked the same way on
the async and the sync path: the Router's ``select(kind="healthy")`` (pre-call checks, tag
filtering, ``async_filter_deployments`` callbacks, its cooldowns, and whatever else the
installed Router applies before its strategy). Plain data (no LiteLLM import).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ratetree.integrations.litellm.blocking import Loops
from ratetree.integrations.litellm.view import RouterView

_METADATA_KEYS = ("metadata", "litellm_metadata")
# A refused sync pick is not logged to the request by the Router (its own sync pick does not
# log one either).
_SYNC_DROPS = ("litellm_logging_obj",)


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
    loops: Loops,
    router: Any,
    view: RouterView,
    group: str,
    request: Mapping[str, Any],
    messages: object,
    input: object,
) -> Allowed | None:
    """:func:`allowed` for a sync pick, run to its end before it returns on one of ``loops``.
    Raises what it raises."""
    if router is None:
        return None
    probe = {key: value for key, value in request.items() if key not in _SYNC_DROPS}
    return loops.run(allowed(router, view, group, probe, messages, input))
