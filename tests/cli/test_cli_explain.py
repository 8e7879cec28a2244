"""``ratetree explain CONFIG GROUP``: Scheduler.explain on a fresh start, as printed."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from clirun import entry, run, write
from examples import readme_model_list
from ratetree import Scheduler
from ratetree.testing import FakeClock


@pytest.fixture
def config(tmp_path: Path) -> str:
    return write(tmp_path / "config.yaml", {"model_list": readme_model_list()})


@pytest.mark.parametrize("tokens", [None, "0", "1200"])
def test_explain_prints_what_the_scheduler_explains(
    config: str, tokens: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["explain", config, "fast"] + ([] if tokens is None else ["--tokens", tokens])
    result = run(capsys, *argv)
    scheduler = Scheduler.from_litellm(readme_model_list(), clock=FakeClock(), rng=random.Random())
    expected = scheduler.explain("fast", tokens=float(tokens or 0))
    assert (result.status, result.out, result.err) == (0, f"{expected}\n", "")


def test_explain_accepts_an_alias(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {
        "model_list": [entry("leaf", "p/x", rpm=3)],
        "router_settings": {"model_group_alias": {"short": "leaf"}},
    }
    result = run(capsys, "explain", write(tmp_path / "c.yaml", config), "short")
    assert result.status == 0
    assert result.out.startswith("short [shuffle] - requested")


def test_an_unknown_group_is_a_usage_error_listing_the_groups(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, "explain", config, "slow")
    assert result.status == 2
    assert result.out == ""
    assert result.err == (
        f"ratetree explain: unknown group 'slow' in {config} "
        "(groups: fast/GPT-OSS-120b, fast/glm-4.7, fast)\n"
    )


def test_explain_shows_a_token_count_no_path_can_hold_instead_of_failing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", [entry("leaf", "p/x", tpm=100)])
    result = run(capsys, "explain", config, "leaf", "--tokens", "500")
    assert result.status == 0
    assert "can never hold 500" in result.out
