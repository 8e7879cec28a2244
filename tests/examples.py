"""The README's example config, read from the README itself, so tests check the text a
user copies rather than a copy of it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()


def readme_model_list() -> list[dict[str, Any]]:
    """The ``model_list`` of the first YAML block under "## The example"."""
    section = README.split("## The example", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "the README lost its example"
    model_list: list[dict[str, Any]] = yaml.safe_load(match.group(1))["model_list"]
    return model_list
