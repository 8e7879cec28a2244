"""The handle a caller holds while a request is in flight."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Protocol, cast

from ratetree.core.gates import DeploymentState, Gate, Reference
from ratetree.core.validate import number


class Settler(Protocol):
    """Who settles a lease: the scheduler that granted it."""

    def finish(
        self,
        lease: Lease,
        tokens: object,
        retry_after: object,
        failed: bool,
        latency: float | None = None,
    ) -> None:
        """Settle ``lease`` once (later calls do nothing); ``latency`` feeds the
        deployment's observed latency. Raises ValueError for a bad ``tokens`` or
        ``retry_after``, and what the clock raises, changing nothing."""
        ...

    def renew(self, lease: Lease, ttl: object) -> None:
        """Extend ``lease``'s slots in a shared state (see :meth:`Lease.renew`)."""
        ...


class Lease:
    """One admitted request on one deployment, reserved along one path.

    Release it exactly once, with the real token count when known; a second release or a
    release after :meth:`fail` does nothing. As a context manager it releases on exit
    (without a token count); call :meth:`fail` inside the block to report a failure.
    """

    __slots__ = ("_settler", "gates", "group", "open", "tokens")

    def __init__(self, settler: Settler, group: str, gates: list[Gate], tokens: float) -> None:
        self._settler = settler
        #: the gates reserved, ``[group, (reference,) node, ..., deployment]``; for the
        #: scheduler that settles the lease
        self.gates = gates
        #: True until settled; only the scheduler that granted the lease sets it
        self.open = True
        self.group = group
        #: the tokens reserved at acquire time
        self.tokens = tokens

    @property
    def deployment_id(self) -> str:
        return self.gates[-1].name

    @property
    def deployment(self) -> Any:
        """The deployment's payload (for LiteLLM, the original model_list entry)."""
        return cast(DeploymentState, self.gates[-1]).spec.payload

    @property
    def path(self) -> tuple[str, ...]:
        """Names from the requested group down to the deployment id."""
        return (self.group, *(i.name for i in self.gates[1:] if not isinstance(i, Reference)))

    @property
    def released(self) -> bool:
        return not self.open

    # Numbers from callers are typed ``object`` and checked here, so a compiled build
    # (which enforces annotations) raises the same errors as the pure one.
    def release(self, tokens: object = None, *, latency: object = None) -> None:
        """Free the in-flight slot; with ``tokens`` (the actual count) settle the token
        reservation along the path: refund what was not used, or charge the extra, which
        may leave a bucket in debt. ``latency`` (seconds the call took) feeds the
        latency-based strategy's average for the deployment. Raises ValueError
        (InvalidRequest) for a negative or non-numeric count or latency."""
        if latency is None:
            self._settler.finish(self, tokens, None, False)
        else:
            self._settler.finish(self, tokens, None, False, number(latency, "latency"))

    def renew(self, ttl: object = None) -> None:
        """For a call that runs longer than a shared state's lease TTL (``RedisState``'s
        ``lease_ttl``): keep this lease's in-flight slots until ``ttl`` seconds from now
        (the state's ``lease_ttl`` by default), never shortening them; call it again before
        that runs out. A slot that already expired is not brought back. Does nothing on an
        in-memory scheduler, or once released. Never raises for an unreachable Redis (the
        renewal is counted and logged as an outage). Raises ValueError (InvalidRequest)
        for a ``ttl`` that is not a finite number > 0."""
        self._settler.renew(self, ttl)

    def fail(self, retry_after: object = None, *, tokens: object = 0) -> None:
        """Release and record a failure of the deployment.

        With ``retry_after`` (e.g. a provider 429's Retry-After, in seconds) the deployment
        cools down exactly that long; without it the scheduler's policy applies
        (``allowed_fails`` failures within a minute, then ``cooldown_time``). A cooldown can
        extend one in force, never shorten it. ``tokens`` is what the failed call consumed,
        0 by default, so a refused call gives its reservation back. Raises ValueError for
        a negative ``retry_after`` or ``tokens``.
        """
        self._settler.finish(self, tokens, retry_after, True)

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "open" if self.open else "released"
        return f"<Lease {' > '.join(self.path)} tokens={self.tokens:g} {state}>"
