"""The exception hierarchy: one root, and each subclass also inherits the builtin it refines."""

from __future__ import annotations


class RatetreeError(Exception):
    """Root of every exception ratetree raises on purpose."""


class ConfigError(RatetreeError, ValueError):
    """A configuration is invalid; the message names the value and where it sits."""


class SpecTypeError(RatetreeError, TypeError):
    """A configuration value has the wrong type (a dict where a :class:`Limits` belongs, a
    number where a :class:`Member` belongs); the message names the field and the value."""


class InvalidRequest(RatetreeError, ValueError):
    """An argument of a call is invalid (a negative token count, a NaN timeout); the
    message names the argument and the value."""


class UnknownGroup(RatetreeError, KeyError):
    """A group name was asked for that the scheduler does not have."""

    def __init__(self, group: str) -> None:
        super().__init__(group)
        self.group = group

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument; a sentence reads better in logs.
        return f"unknown group {self.group!r}"


class NoCapacity(RatetreeError):
    """No deployment reachable from ``group`` can admit the request now.

    ``retry_after`` is the number of seconds until this same request would be admitted if
    nothing else happened (buckets refill, cooldowns end), or ``None`` when only limits on
    requests in flight block it, since those free up only when a lease is released, or
    when waiters queued in ``acquire_async``/``acquire_wait`` hold the capacity it needs.
    """

    def __init__(self, group: str, retry_after: float | None) -> None:
        self.group = group
        self.retry_after = retry_after
        when = "until a lease is released" if retry_after is None else f"for {retry_after:.6g} s"
        super().__init__(f"no capacity in group {group!r} {when}")

    def __reduce__(self) -> tuple[type[NoCapacity], tuple[str, float | None]]:
        return (type(self), (self.group, self.retry_after))


class StateUnavailable(NoCapacity):
    """The shared state (Redis) could not be reached and the scheduler fails closed.

    A NoCapacity, so callers that already back off on refusals do the same here;
    ``reason`` says what the client reported, and the client's exception is the
    ``__cause__``.
    """

    def __init__(self, group: str, retry_after: float | None, reason: str) -> None:
        super().__init__(group, retry_after)
        self.reason = reason
        self.args = (f"shared state unavailable for group {group!r}: {reason}",)

    def __reduce__(self) -> tuple[type[NoCapacity], tuple[str, float | None, str]]:  # type: ignore[override]
        return (type(self), (self.group, self.retry_after, self.reason))
