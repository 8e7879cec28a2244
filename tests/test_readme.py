"""The README shows what the code does: its demo output and its examples run as written."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from examples import readme_model_list
from ratetree import ConfigError, Scheduler
from ratetree._demo import EXAMPLE_MODEL_LIST, main

README = (Path(__file__).parent.parent / "README.md").read_text()


def block_after(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def test_the_readme_shows_the_demo_output_verbatim() -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main()
    assert out.getvalue().strip() in README


def test_the_hand_built_tree_example_runs() -> None:
    namespace: dict[str, object] = {}
    exec(block_after("## Building a tree by hand", "python"), namespace)
    scheduler = namespace["scheduler"]
    assert isinstance(scheduler, Scheduler)
    assert scheduler.acquire("fast").path == ("fast", "gpt", "cerebras")


def test_the_cycle_error_quoted_in_the_readme_is_the_one_raised() -> None:
    quoted = re.search(r"`(model_list\[3\] [^`]*closes a cycle[^`]*)`", README)
    assert quoted
    model_list = [
        {"model_name": "fast/a", "litellm_params": {"model": "p/x"}},
        {"model_name": "fast", "litellm_params": {"model": "p/y"}},
        {"model_name": "fast/a", "litellm_params": {"model": "fast"}},
        {"model_name": "fast", "litellm_params": {"model": "fast/a"}},
    ]
    try:
        Scheduler.from_litellm(model_list)
    except ConfigError as err:
        message = str(err)
    else:
        raise AssertionError("the cycle was not refused")
    assert message == quoted.group(1)


def test_the_demo_runs_the_readme_example() -> None:
    assert readme_model_list() == EXAMPLE_MODEL_LIST
