"""The "Waiting for capacity" example (docs/waiting.md) runs and prints what it shows."""

from __future__ import annotations

import contextlib
import io

from examples import block

TITLE = "Waiting for capacity"


def test_the_waiting_example_serves_each_held_request_at_its_moment() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(block(TITLE, "python"), {"__name__": "readme"})
    assert out.getvalue() == block(TITLE, "text")
