"""The admission loop of a scheduler, in the halves its two callers share.

``Scheduler.acquire`` runs a shared backend's round trip in the calling thread;
``Scheduler.aacquire`` (:func:`acquire_awaited`) awaits it on the event loop. Both run
the same steps (``state.base``): under the lock, :func:`start` looks the group up and
admits in the view and the backend prepares its trip; the trip runs with the lock free;
:func:`land` folds the reply in under the lock again.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import partial
from typing import TYPE_CHECKING

from ratetree.core.gates import GroupState
from ratetree.core.leases import Lease
from ratetree.errors import NoCapacity, RatetreeError
from ratetree.state.base import AsyncStateBackend, AsyncTrip, Trip
from ratetree.state.memory import LocalState, nothing, too_large
from ratetree.waiting.queue import WaitQueue

if TYPE_CHECKING:
    import asyncio  # imported where awaited: ``import ratetree`` stays light


def start(
    local: LocalState,
    waiting: WaitQueue,
    group: str,
    tokens: float,
    exclude: Collection[str],
    now: float,
    horizon: float,
    given: object = None,
) -> tuple[GroupState, Lease | None]:
    """Under the lock: the live group ``group`` names (looked up under the lock that
    admits, so a reconfiguration cannot slip in) and the lease the view admits, or None.
    ``given``: the token count as the caller gave it, for the error's message.
    Raises UnknownGroup, InvalidRequest for a request too large for every path, and
    NoCapacity when queued waiters need the capacity."""
    root = local.tree.groups.get(group) or local.lookup(group)
    if tokens > root.max_tokens:
        raise too_large(group, tokens if given is None else given, root)
    # Capacity that queued waiters need is theirs: no jumping the queue.
    if waiting.entries and waiting.holds(root, now, horizon):
        raise NoCapacity(group, None)
    return root, local.admit(group, root, tokens, now, horizon, exclude)


def land(
    local: LocalState,
    trip: Trip | AsyncTrip,
    lease: Lease | None,
    group: str,
    root: GroupState,
    tokens: float,
    last_try: bool,
) -> Lease | None:
    """Take the lock and fold a round trip's reply into the view: ``lease`` when its
    commit stands, None to select again. Raises the refusal when a read of the shared
    state (``lease`` None) learned nothing or the ``last_try``'s commit was refused, and
    StateUnavailable when the backend fails closed."""
    with local.locked() as moment:
        if lease is None:  # the shared state was read: select again, or refuse
            if not local.fold(trip, moment, nothing):
                raise local.refusal(group, root, tokens, moment.now)
            return None
        undo = partial(local.take_back, lease, moment.now, moment.horizon)
        if local.fold(trip, moment, undo):
            return lease
        if last_try:
            raise local.refusal(group, root, tokens, moment.now)
        return None


async def acquire_awaited(
    local: LocalState,
    waiting: WaitQueue,
    backend: AsyncStateBackend,
    group: str,
    tokens: float,
    exclude: Collection[str],
) -> Lease:
    """``Scheduler.acquire`` with the round trip awaited. Raises as it does."""
    refused = 0
    synced = False
    while True:
        with local.locked() as moment:  # short, and never awaits
            root, lease = start(local, waiting, group, tokens, exclude, moment.now, moment.horizon)
            trip: AsyncTrip | None
            if lease is not None:
                trip = backend.commit(lease, moment.now)
                if trip is None:
                    return lease
            else:
                trip = None if synced else backend.refresh(root, moment.now)
                if trip is None:
                    raise local.refusal(group, root, tokens, moment.now)
                synced = True  # one read per request
        await _ride(local, trip, lease)
        stands = land(local, trip, lease, group, root, tokens, refused >= backend.retries)
        if stands is not None:
            return stands
        if lease is not None:
            refused += 1


async def _ride(local: LocalState, trip: AsyncTrip, lease: Lease | None) -> None:
    """Await ``trip``'s round trip with the lock free, in a task of its own: a caller
    cancelled meanwhile leaves it running, and when it lands a commit that stood is
    released, so a cancelled acquire takes nothing, in the view or in the shared state."""
    import asyncio

    loop = asyncio.get_running_loop()
    landed: asyncio.Future[None] = loop.create_future()
    carrier = loop.create_task(_carry(local, trip, lease, landed))
    _CARRIERS.add(carrier)  # referenced while it runs: the loop keeps tasks weakly
    carrier.add_done_callback(_CARRIERS.discard)
    await landed  # cancelling the caller cancels this future, not the carrier


_CARRIERS: set[asyncio.Task[None]] = set()


async def _carry(
    local: LocalState, trip: AsyncTrip, lease: Lease | None, landed: asyncio.Future[None]
) -> None:
    try:
        await trip.run()  # never raises for Redis being away; anything else goes on
    except Exception as err:
        if not landed.done():
            landed.set_exception(err)
        return
    if landed.cancelled():
        _abandoned(local, trip, lease)
    else:
        landed.set_result(None)


def _abandoned(local: LocalState, trip: AsyncTrip, lease: Lease | None) -> None:
    with local.locked() as moment:
        undo = nothing if lease is None else partial(local.take_back, lease, *moment[:2])
        try:
            stands = local.fold(trip, moment, undo)
        except RatetreeError:  # failing closed: undone already
            return
    if stands and lease is not None:
        lease.release()
