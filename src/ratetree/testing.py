"""Helpers for tests of code that embeds ratetree."""

from __future__ import annotations

from ratetree.clocks import VirtualClock, VirtualTimer

__all__ = ["FakeClock", "FakeTimer"]

#: A timer filed with :meth:`FakeClock.call_at`.
FakeTimer = VirtualTimer


class FakeClock(VirtualClock):
    """:class:`ratetree.clocks.VirtualClock` under the name tests use: a clock that moves
    only when told to. Pass it as ``clock=`` and call ``advance``; a scheduler given it
    files its wake-up timer here, so waits are driven by the test without real sleeping."""

    __slots__ = ()
