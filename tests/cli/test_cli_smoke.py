"""The installed entry points: the ``ratetree`` console script and ``python -m ratetree``
run the same command line, and a long simulation shows progress only on a terminal."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clirun import run


def test_the_console_script_and_python_m_print_what_main_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    script = shutil.which("ratetree", path=str(Path(sys.executable).parent))
    assert script is not None, "the ratetree console script is not installed"
    expected = run(capsys, "simulate", "--duration", "120")
    for command in ([script], [sys.executable, "-m", "ratetree"]):
        done = subprocess.run(
            [*command, "simulate", "--duration", "120"], capture_output=True, text=True, check=False
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, expected.out, "")


def test_an_error_exits_with_its_status_and_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ratetree", "check", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_progress_goes_to_a_terminal_and_is_erased() -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "ratetree", "simulate", "--rps", "3", "--duration", "7200"],
            stdout=subprocess.PIPE,
            stderr=follower,
            check=False,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # Linux reports the closed terminal as EIO
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert b"\rsimulating:" in shown and b"of 7200 s" in shown
    assert shown.endswith(b"\r")  # the line is blanked, so the terminal is left clean
    assert b"simulating" not in done.stdout
