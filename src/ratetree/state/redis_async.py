"""Shared limits in Redis for asyncio: :class:`AsyncRedisState`, an ``AsyncStateBackend``.

It keeps the state exactly as :class:`~ratetree.state.redis.RedisState` does, and is one:
an inner ``RedisState`` (on a ``redis.asyncio`` client it never calls) names the keys,
prepares every trip under the scheduler's lock and lands every reply, with the same
scripts, fail modes, prefix, TTLs, fork handling and reply ordering. What differs is who
sends the scripts and when:

- one sender task per event loop sends every script as a pipeline, one pipeline at a
  time. Callers that arrive while a pipeline is out wait for the next one, so concurrent
  acquires share round trips, and Redis runs this process's scripts in the order they
  are numbered (the reply ordering ``RedisState`` keeps with its lock);
- a release or failure (``Lease.release``, plain synchronous code, from any thread) is
  settled in the view at once and its script waits in an outbox: it rides on the next
  pipeline, or goes alone after ``release_delay`` seconds. So a request costs one round
  trip, its acquire, when requests follow each other (docs/redis.md, "asyncio").
  Renewals (``Lease.renew``) wait in the outbox too.

The round trip itself is in one place, :meth:`AsyncRedisState._round_trip`, past the
inner state's circuit breaker (``state.breaker``): while it is open nothing is sent and
every script is answered from the fail mode at once. Releases a round trip could not
deliver are tried again ``flush_interval`` seconds later, with no traffic needed.
"""

from __future__ import annotations

import logging
import math
import os
import random
import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from ratetree.core.gates import GroupState
from ratetree.core.leases import Lease
from ratetree.core.validate import show
from ratetree.errors import ConfigError
from ratetree.state.base import AsyncStateBackend, Host, Moment
from ratetree.state.breaker import SKIP, CircuitOpen
from ratetree.state.memory import nothing
from ratetree.state.redis import RedisState
from ratetree.state.redis_checks import check_connection
from ratetree.state.redis_settings import open_client
from ratetree.state.redis_trips import RedisStats, RedisTrip, ScriptCall
from ratetree.state.redis_wire import Result, Wire, calls_of, fill

if TYPE_CHECKING:
    import asyncio  # imported where awaited: ``import ratetree`` stays light

    from ratetree.core.build import Tree

log = logging.getLogger("ratetree.redis")

__all__ = ["AsyncRedisState", "AsyncRedisTrip"]


class AsyncRedisTrip:
    """A :class:`RedisTrip` sent by the asyncio sender (an ``AsyncTrip``)."""

    __slots__ = ("state", "trip")

    def __init__(self, trip: RedisTrip, state: AsyncRedisState) -> None:
        self.trip = trip
        self.state = state

    async def run(self) -> None:
        trip = self.trip
        fill(trip, await self.state.send(calls_of(trip)))

    def apply(self, moment: Moment, undo: Callable[[], None]) -> bool:
        return self.trip.apply(moment, undo)


class AsyncRedisState:
    """:class:`~ratetree.state.redis.RedisState` for asyncio: the same shared limits,
    with every round trip awaited on the event loop and pipelined (see the module).

    ``client`` is a ``redis.asyncio.Redis`` (or compatible) or a URL; from a URL it
    makes its own client (``timeout`` seconds for connecting and for each reply, no
    client-side retries: a retried pipeline could commit twice) and makes it again in a
    forked process or on a new event loop. A client passed in serves one event loop.
    ``release_delay``: seconds a release waits for a round trip to ride on before it is
    sent alone. ``check``: for a URL, talk to Redis once now through a synchronous client
    (see ``state.redis_checks``), so that a wrong password, a failed TLS verification or a
    cluster node raise here; a client passed in is not checked. ``flush_interval``:
    releases a round trip could not deliver are tried again this often. Every other
    argument is :class:`RedisState`'s, circuit breaker included. Admit with ``await
    scheduler.aacquire(...)``; ``await scheduler.aclose()`` delivers what is queued.
    Raises ConfigError for a bad value or a configuration error the check found,
    ImportError without the ``redis`` package.
    """

    shared = True
    awaited = True

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "default",
        lease_ttl: float = 600.0,
        on_unavailable: str = "closed",
        clock: Callable[[], float] | None = None,
        retries: int = 3,
        sync_interval: float = 0.1,
        unavailable_retry_after: float = 1.0,
        max_pending: int = 10_000,
        replica_id: str | None = None,
        timeout: float = 1.0,
        release_delay: float = 0.005,
        backoff: float = 0.1,
        max_backoff: float = 5.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
        flush_interval: float = 1.0,
        check: bool = True,
    ) -> None:
        import redis.asyncio  # the optional dependency, imported only when one is made
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        if isinstance(release_delay, bool) or not isinstance(release_delay, (int, float)):
            raise ConfigError(f"release_delay {show(release_delay)} must be a number")
        if not (math.isfinite(release_delay) and release_delay >= 0):
            raise ConfigError(f"release_delay {show(release_delay)} must be a finite number >= 0")
        self._url = client if isinstance(client, str) else None
        self._timeout = timeout
        self._make = redis.asyncio.Redis.from_url
        self._no_retry = partial(Retry, NoBackoff(), 0)
        self._wire = Wire(self._connect() if self._url is not None else client, clock)
        # Validates every other argument; prepares trips and lands replies (see above).
        self._core = RedisState(
            self._wire.client,
            prefix=prefix,
            lease_ttl=lease_ttl,
            on_unavailable=on_unavailable,
            clock=clock,
            retries=retries,
            sync_interval=sync_interval,
            unavailable_retry_after=unavailable_retry_after,
            max_pending=max_pending,
            replica_id=replica_id,
            timeout=timeout,
            backoff=backoff,
            max_backoff=max_backoff,
            jitter=jitter,
            rng=rng,
            flush_interval=flush_interval,
            check=False,  # its client is asynchronous; checked below
        )
        # The inner state never sends (this one does), so its delivery thread must not run:
        # undelivered releases are tried again from the event loop (see _round_trip).
        self._core.close()
        self.flush_interval = float(flush_interval)
        if check and self._url is not None:
            probe = open_client(self._url, timeout)
            try:
                check_connection(probe, prefix, on_unavailable, redis.cluster.RedisCluster)
            finally:
                probe.close()
        self.release_delay = float(release_delay)
        self.retries = retries
        self._host: Host | None = None
        self._pid = os.getpid()
        # Settled releases waiting for a round trip; filled and emptied under the lock.
        self._outbox: list[RedisTrip] = []
        # The sender, on one event loop (the one that last sent).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = 0
        self._queue: list[tuple[list[ScriptCall], asyncio.Future[list[Result]]]] = []
        self._busy = False
        self._task: asyncio.Task[None] | None = None
        self._due = False  # the outbox waited long enough: send it even alone
        self._armed = False  # a timer will set _due
        self._retrying = False  # a timer will deliver what a round trip left undelivered
        self._forced = False  # the next round trip is sent whatever the breaker says

    def _connect(self) -> Any:
        assert self._url is not None
        try:
            return self._make(
                self._url,
                socket_timeout=self._timeout,
                socket_connect_timeout=self._timeout,
                retry=self._no_retry(),
            )
        except ValueError as err:  # the message may hold the URL, and so its password
            raise ConfigError(
                f"client URL must start with redis://, rediss:// or unix:// ({type(err).__name__})"
            ) from None

    # ----------------------------------------------------------------- what RedisState has

    @property
    def client(self) -> Any:
        """The ``redis.asyncio`` client in use."""
        return self._wire.client

    @property
    def prefix(self) -> str:
        return self._core.prefix

    @property
    def on_unavailable(self) -> str:
        return self._core.on_unavailable

    @property
    def replica_id(self) -> str:
        return self._core.replica_id

    @property
    def stats(self) -> RedisStats:
        """The counters, as :class:`RedisState`'s (``round_trips`` counts scripts; the
        pipelines that carried them are :attr:`pipelines`)."""
        return self._core.stats

    @property
    def lease_ttl(self) -> float:
        """Seconds an in-flight slot outlives its acquire (see :meth:`renew`)."""
        return self._core.lease_ttl

    @property
    def pipelines(self) -> int:
        """Pipelines sent: the network round trips (``stats.round_trips`` counts scripts)."""
        return self._wire.sent

    @property
    def breaker(self) -> Any:
        """The circuit breaker (``state.breaker.Breaker``) in front of every round trip."""
        return self._core.breaker

    @property
    def pending(self) -> int:
        """Releases and failures not delivered to Redis yet: queued after a failure, or
        waiting in the outbox for a round trip."""
        return self._core.pending + sum(len(trip.sends) for trip in self._outbox)

    # ----------------------------------------------------------------- AsyncStateBackend

    def bind(self, tree: Tree, host: Host) -> None:
        """Attach to the scheduler ``host``. Raises ConfigError when this state already
        serves another scheduler."""
        if self._host is not None:
            raise ConfigError(f"{self!r} already serves another scheduler; make one per scheduler")
        self._core.bind(tree, host)
        self._host = host

    def map(self, tree: Tree) -> None:
        self._core.map(tree)

    def commit(self, lease: Lease, now: float) -> AsyncRedisTrip:
        """The round trip that commits ``lease``'s path in Redis (all gates or none)."""
        self._after_fork()
        return AsyncRedisTrip(self._core.commit(lease, now), self)

    def refresh(self, root: GroupState, now: float) -> AsyncRedisTrip | None:
        """A read of ``root``'s subtree when the view refused (see RedisState)."""
        self._after_fork()
        trip = self._core.refresh(root, now)
        return None if trip is None else AsyncRedisTrip(trip, self)

    def settle(
        self,
        lease: Lease,
        tokens: float | None,
        retry_after: float | None,
        failed: bool,
        now: float,
    ) -> None:
        """Under the scheduler's lock, on any thread: queue the delivery of a release or
        failure; it rides on the next round trip, or is sent after ``release_delay``."""
        self._after_fork()
        trip = self._core.settle(lease, tokens, retry_after, failed, now)
        if trip is None:
            return
        self._outbox.append(trip)
        if not self._armed:
            self._arm()

    def renew(self, lease: Lease, ttl: float | None, now: float) -> None:
        """Under the scheduler's lock, on any thread: queue the extension of ``lease``'s
        slots; it rides on the next round trip, or is sent after ``release_delay``."""
        self._after_fork()
        trip = self._core.renew(lease, ttl, now)
        if trip is None:
            return
        self._outbox.append(trip)
        if not self._armed:
            self._arm()

    async def aflush(self) -> int:
        """Deliver every queued release now, even while the breaker holds calls back (an
        explicit flush, e.g. at shutdown, is worth one try); returns how many still wait
        (Redis unreachable). Never raises for an unreachable Redis."""
        host = self._host
        if host is None:
            return 0
        with host.locked() as moment:
            self._outbox.append(self._core.delivery(moment.now))
        self._due = self._forced = True
        import asyncio

        # Rides on the next pipeline, which takes the whole outbox; in a task of its own,
        # as the scheduler sends (see send), so cancelling this call loses nothing.
        await asyncio.shield(self.send([]))
        return self.pending

    async def aclose(self) -> None:
        """:meth:`aflush`, then close the connections of a client made from a URL (the
        next use connects again). Never raises for an unreachable Redis."""
        await self.aflush()
        client = self._wire.client
        if self._url is not None:
            self._wire.client = self._connect()
            await client.aclose()

    # ----------------------------------------------------------------- the sender

    async def send(self, calls: list[ScriptCall]) -> list[Result]:
        """Send ``calls`` with the next pipeline; what each came back as, in order. When
        no pipeline is out, the caller's task sends it itself (one task switch less per
        request), so it must not be cancelled meanwhile: the scheduler runs trips in a
        task of their own."""
        import asyncio

        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._adopt(loop)
        done: asyncio.Future[list[Result]] = loop.create_future()
        self._queue.append((calls, done))
        if not self._busy:
            self._busy = True
            try:
                await self._next()
            finally:
                self._hand_over(loop)
        return await done

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        """After a pipeline: a task sends what arrived meanwhile, or the sender rests."""
        if self._queue or (self._due and self._outbox):
            self._task = loop.create_task(self._drain())  # referenced: tasks can be collected
        else:
            self._busy = False

    async def _drain(self) -> None:
        """The sender's task: one pipeline at a time, until nothing waits."""
        import asyncio

        try:
            await self._next()
        finally:
            self._hand_over(asyncio.get_running_loop())

    async def _next(self) -> None:
        """One pipeline with everything waiting: the callers' scripts and the outbox."""
        host = self._host
        assert host is not None
        batch, self._queue = self._queue, []
        self._due = False
        try:
            with host.locked():  # the outbox is filled under the scheduler's lock
                mail, self._outbox = self._outbox, []
            await self._round_trip(host, mail, batch)
        except Exception as err:  # not Redis (e.g. the clock raised): no caller waits forever
            for _, done in batch:
                if not done.done():
                    done.set_exception(err)

    async def _round_trip(
        self,
        host: Host,
        mail: list[RedisTrip],
        batch: list[tuple[list[ScriptCall], asyncio.Future[list[Result]]]],
    ) -> None:
        """One pipeline: the queued releases and renewals (``mail``, landed here) first,
        then the callers' scripts (handed back to them). The one place a round trip
        happens; while the breaker is open, nothing is sent and every script is answered
        with :class:`CircuitOpen` (an outage to the inner state) at once."""
        import asyncio

        mailed = [calls_of(trip) for trip in mail]
        calls = [call for sent in mailed for call in sent]
        calls += [call for waiting, _ in batch for call in waiting]
        breaker = self._core.breaker
        forced, self._forced = self._forced, False
        if breaker.allow() is SKIP and not forced:
            results: list[Result] = [CircuitOpen("Redis did not answer lately")] * len(calls)
        else:
            results = await self._wire.run(calls)
            if breaker.record(self._reached(results)):  # Redis answers again
                with host.locked() as moment:  # what waited goes with the next pipeline
                    self._outbox.append(self._core.delivery(moment.now))
                self._due = True
        at = 0
        if mail:
            with host.locked() as moment:
                for trip, sent in zip(mail, mailed, strict=True):
                    fill(trip, results[at : at + len(sent)])
                    at += len(sent)
                    try:
                        trip.apply(moment, nothing)  # requeues what did not arrive
                    except Exception:  # not Redis (a clock that raised): keep sending
                        log.exception("ratetree: delivering queued releases failed")
        for waiting, done in batch:
            if not done.done():
                done.set_result(results[at : at + len(waiting)])
            at += len(waiting)
        if self._core.pending and not self._retrying:  # undelivered: try again, idle or not
            self._retrying = True
            asyncio.get_running_loop().call_later(self.flush_interval, self._redeliver)

    def _reached(self, results: list[Result]) -> bool | None:
        """For the breaker: False when a script could not reach Redis, True when Redis
        answered them all (errors included), None when none was sent for a reason of its
        own (the clock raised)."""
        answered = None
        for result in results:
            if not isinstance(result, Exception):
                answered = True
                continue
            reached = self._core.reached(result)
            if reached is False:
                return False
            answered = answered or reached
        return answered

    def _redeliver(self) -> None:
        """On the loop, ``flush_interval`` after a round trip left releases undelivered:
        send them (with the next pipeline, or alone)."""
        self._retrying = False
        host = self._host
        if host is None or not self._core.pending:
            return
        with host.locked() as moment:
            self._outbox.append(self._core.delivery(moment.now))
        self._post()

    def _adopt(self, loop: asyncio.AbstractEventLoop) -> None:
        """Send from ``loop`` from now on. Raises ConfigError while another loop runs."""
        old = self._loop
        if old is not None and old.is_running() and not old.is_closed():
            raise ConfigError(f"{self!r} is in use on another running event loop")
        if old is not None and self._url is not None:
            self._wire.client = self._connect()  # the old client's connections are old's
        self._loop, self._thread = loop, threading.get_ident()
        self._queue, self._busy, self._armed = [], False, False

    def _arm(self) -> None:
        """Under the lock: have the outbox sent within ``release_delay``, from the
        sender's loop (the releasing thread may be another)."""
        loop = self._loop
        if loop is None or loop.is_closed():  # delivered by the next round trip or aclose
            return
        self._armed = True
        if threading.get_ident() == self._thread:
            loop.call_later(self.release_delay, self._post)
        else:
            loop.call_soon_threadsafe(loop.call_later, self.release_delay, self._post)

    def _post(self) -> None:
        """On the loop: the outbox waited ``release_delay``; send it."""
        self._armed = False
        self._due = True
        if not self._busy and self._outbox:
            assert self._loop is not None
            self._busy = True
            self._task = self._loop.create_task(self._drain())

    def _after_fork(self) -> None:
        """In a forked process: the parent delivers its own releases; this one sends
        from its own loop, with a client of its own when it made it."""
        pid = os.getpid()
        if pid != self._pid:
            self._pid = pid
            self._outbox = []
            if self._url is not None:
                self._wire.client = self._connect()
            self._loop = None

    def __repr__(self) -> str:
        return f"<AsyncRedisState prefix={self.prefix!r} replica={self.replica_id!r}>"


if TYPE_CHECKING:

    def _is_a_backend(state: AsyncRedisState) -> AsyncStateBackend:  # mypy checks the protocol
        return state
