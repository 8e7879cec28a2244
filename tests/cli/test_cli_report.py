"""simulate's output ends: a pipe closed early, and plots checked before the run, in the
format their suffix names, with each deployment's ceiling and every line visible."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from clirun import run
from ratetree.cli.config_file import read_config
from ratetree.cli.report import figure
from ratetree.cli.simulate import poisson_arrivals, simulate
from ratetree.scheduler import Scheduler
from ratetree.testing import FakeClock


def test_a_reader_that_stops_early_ends_the_run_quietly_with_status_0() -> None:
    # `ratetree simulate ... | head -1`: far more output than a pipe buffer holds.
    command = [sys.executable, "-m", "ratetree", "simulate", "--duration", "36000"]
    with subprocess.Popen(
        [*command, "--format", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        status = process.wait(timeout=120)
        err = process.stderr.read()
    assert first.startswith(b"kind,minute,name")
    assert (status, err) == (0, b"")


@pytest.mark.parametrize(
    ("suffix", "magic"), [("png", b"\x89PNG"), ("svg", b"<?xml"), ("pdf", b"%PDF")]
)
def test_the_suffix_picks_the_format(
    suffix: str, magic: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    target = tmp_path / f"admitted.{suffix}"
    result = run(capsys, "simulate", "--duration", "120", "--plot", str(target))
    assert result.status == 0
    assert target.read_bytes().startswith(magic)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "plot.jpg",
            "--plot '{path}': name a .png, .svg or .pdf file (the suffix picks the format)",
        ),
        ("missing/plot.png", "cannot open {path}: No such file or directory"),
        ("folder.png", "cannot open {path}: Is a directory"),
    ],
)
def test_a_plot_that_cannot_be_written_is_refused_before_the_run(
    name: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    (tmp_path / "folder.png").mkdir()
    path = str(tmp_path / name)
    result = run(capsys, "simulate", "--duration", "604800", "--plot", path)  # a week: long
    assert result.status == 2
    assert result.out == ""
    assert result.err == f"ratetree simulate: {message.format(path=path)}\n"


def test_the_figure_draws_each_ceiling_and_a_marker_per_minute_per_deployment() -> None:
    pytest.importorskip("matplotlib", reason="the plot extra is not installed")
    spec = read_config(None).spec()  # two deployments with rpm 5, one with rpm 30
    clock = FakeClock()
    scheduler = Scheduler(spec, clock=clock)
    arrivals = list(poisson_arrivals(2.0, 180.0, ["fast"], 0.0, random.Random(1)))
    result = simulate(scheduler, clock, arrivals, duration=180.0)
    axes = figure(result, "title").axes[0]
    ceilings = sorted(
        float(cast(Any, line.get_ydata())[0]) for line in axes.lines if line.get_linestyle() == ":"
    )
    assert ceilings == [5, 5, 30]
    markers = [line.get_marker() for line in axes.lines if line.get_linestyle() == "None"]
    assert len(set(markers)) == len(markers) == 3  # coinciding lines stay told apart
