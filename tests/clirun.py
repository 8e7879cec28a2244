"""Running the ``ratetree`` command line in-process, and config files to run it on."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import yaml

from ratetree.cli.main import main


class Run(NamedTuple):
    status: int
    out: str
    err: str


def run(
    capsys: pytest.CaptureFixture[str], *argv: str, environ: Mapping[str, str] | None = None
) -> Run:
    """``ratetree *argv`` (with ``environ`` for ``os.environ/NAME`` values, default an empty
    one); argparse's own exits (--help, bad arguments) count as a status."""
    capsys.readouterr()  # drop anything printed before
    try:
        status = main(list(argv), {} if environ is None else environ)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else 1
    captured = capsys.readouterr()
    return Run(status, captured.out, captured.err)


def write(path: Path, document: object) -> str:
    """``document`` as YAML at ``path``; returns the path as a string for argv."""
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


def entry(
    name: str, model: str, info: Mapping[str, object] | None = None, **params: object
) -> dict[str, Any]:
    result: dict[str, object] = {"model_name": name, "litellm_params": {"model": model, **params}}
    if info is not None:
        result["model_info"] = info
    return result
