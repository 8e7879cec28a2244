"""Token buckets kept in time units, so admission is exact to a tolerance in seconds.

A bucket of capacity C that refills C every ``period`` seconds is stored as one number,
``full_at``: the moment it will be full again (the "theoretical arrival time" of GCRA).
Its level at time t is ``C - max(0, full_at - t) / interval`` with ``interval = period / C``.
Nothing runs in the background: the level is derived from ``full_at`` whenever it is read,
as aiolimiter's ``_leak`` does.

Working in seconds rather than in fractions of a token makes ``retry_after`` exact: the
moment a request of n units fits is ``full_at + n * interval - period``, and comparing
moments with a tolerance of a nanosecond keeps a request that is due at t from being refused
at t because a refill summed to 0.9999999999999999 of a token.
"""

from __future__ import annotations

from ratetree.core.specs import Rate

NEVER = float("inf")


def tolerance(now: float) -> float:
    """How far past ``now`` a moment may lie and still count as ``now``.

    One nanosecond, widened for large clock readings where a float's spacing is coarser.
    """
    return 1e-9 + abs(now) * 1e-15


class Bucket:
    """One rate on one node: runtime state, separate from its :class:`Rate` spec."""

    __slots__ = ("capacity", "full_at", "interval", "period", "rate")

    def __init__(self, rate: Rate) -> None:
        self.rate = rate
        self.capacity = rate.amount
        self.period = rate.period
        # A zero rate (LiteLLM's ``rpm: 0``) holds nothing: any unit exceeds its capacity,
        # so ready_at never divides; a finite interval keeps zero-unit arithmetic finite.
        self.interval = rate.period / rate.amount if rate.amount else rate.period
        self.full_at = -NEVER  # starts full

    def ready_at(self, units: float) -> float:
        """The earliest moment ``units`` fit, or NEVER if they exceed the capacity.

        May lie in the past: callers compare it with now (plus tolerance).
        """
        if units > self.capacity:
            return NEVER
        return self.full_at + units * self.interval - self.period

    def take(self, units: float, now: float) -> None:
        """Remove ``units``; the level may go below zero (debt), which blocks until repaid."""
        full_at = self.full_at
        self.full_at = (full_at if full_at > now else now) + units * self.interval

    def give_back(self, units: float, now: float) -> None:
        """Return ``units``, never filling the bucket past its capacity."""
        full_at = self.full_at - units * self.interval
        self.full_at = full_at if full_at > now else now

    def level(self, now: float) -> float:
        """Units available at ``now`` (negative while in debt)."""
        behind = self.full_at - now
        return self.capacity if behind <= 0 else self.capacity - behind / self.interval
