"""Helpers for tests of code that embeds ratetree."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    """A clock that moves only when told to: pass it as ``clock=`` and call ``advance``.

    Calling it returns the current time in seconds, as ``time.monotonic`` does.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward. Raises ValueError for a negative or non-finite step."""
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError(f"a clock only moves forward by a finite step, got {seconds!r}")
        self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock({self._now!r})"
