"""What a pick would choose now, holding nothing: ``router.get_available_deployment`` and
its async twin called outside a request.

LiteLLM's own answer is a draw of its strategy (simple-shuffle draws in proportion to
``weight``, else ``rpm``, else ``tpm``), so a caller asking many times sees every
deployment in that proportion. The answer here is drawn the same way from
:meth:`Scheduler.explain`: at each group on the way down, a shuffle group draws among its
admitting members by their weights; a group of any other strategy takes its first
admitting member, as its own order ranks them.
"""

from __future__ import annotations

import random
from typing import Any

from ratetree.core.explain import Explanation
from ratetree.errors import NoCapacity
from ratetree.integrations.litellm.refusals import bad_request, no_capacity_error
from ratetree.integrations.litellm.view import RouterView
from ratetree.scheduler import Scheduler

_DRAWN = frozenset({"shuffle"})  # strategies whose pick is a weighted random draw


def drawn(node: Explanation, exclude: frozenset[str], rng: random.Random) -> str | None:
    """A deployment id a pick from ``node`` could take now, outside ``exclude``: drawn by
    weight through shuffle groups, the first admitting member elsewhere; None when none."""
    if node.kind == "deployment":
        return None if node.name in exclude or not node.admits else node.name
    members = [c for c in node.children if c.role == "candidate" and c.admits]
    while members:
        if node.strategy in _DRAWN:
            weights = [max(0.0, c.weight or 0.0) for c in members]
            # Members weighing 0 serve only when no weighted member can.
            member = rng.choices(members, weights)[0] if sum(weights) else rng.choice(members)
        else:
            member = members[0]
        found = drawn(member, exclude, rng)
        if found is not None:
            return found
        members.remove(member)
    return None


def peek(
    scheduler: Scheduler,
    view: RouterView,
    group: str,
    exclude: frozenset[str],
    tokens: float,
    requested: str,
    rng: random.Random,
) -> dict[str, Any]:
    """The entry a pick from ``group`` would choose now, holding nothing. Raises LiteLLM's
    BadRequestError for a bad size, its no-capacity error when nothing admits."""
    try:
        explained = scheduler.explain(group, tokens)
    except ValueError as err:
        raise bad_request(str(err), requested) from None
    deployment_id = drawn(explained, exclude, rng) if explained.admits else None
    entry = None if deployment_id is None else view.entry(group, deployment_id, requested)
    if entry is None:
        raise no_capacity_error(NoCapacity(requested, None))
    return entry
