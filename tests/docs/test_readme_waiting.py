"""The README's "Waiting for capacity" example runs and prints what the README shows."""

from __future__ import annotations

import contextlib
import io

from test_readme import block_after

HEADING = "## Waiting for capacity"


def test_the_waiting_example_serves_each_held_request_at_its_moment() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(block_after(HEADING, "python"), {"__name__": "readme"})
    assert out.getvalue() == block_after(HEADING, "text")
