"""The docs' runnable text (README.md and docs/*.md), read from the files themselves, so
tests check the text a user copies rather than a copy of it. Snippets are found by the
heading they sit under, in whichever file holds that heading, so moving a section from
the README into docs/ keeps it tested."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NamedTuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\w*)$")
HEADING = re.compile(r"^(#{1,6}) (.+)$")


class Block(NamedTuple):
    """One fenced code block: its file, the info string's language ("" for none), text."""

    file: str
    language: str
    text: str


def doc_files() -> list[Path]:
    """README.md, then every Markdown file in docs/, by name."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _headings(lines: list[str]) -> list[tuple[int, int, str]]:
    """(line index, level, title) of every heading outside fenced code blocks, where a
    line such as ``# comment`` is code, not a heading."""
    found = []
    inside = False
    for index, line in enumerate(lines):
        if FENCE.match(line):
            inside = not inside
        elif not inside and (heading := HEADING.match(line)):
            found.append((index, len(heading.group(1)), heading.group(2)))
    return found


def section(title: str) -> tuple[str, str]:
    """(file, text) of the one section headed ``title`` (at any level) in README.md or
    docs/*.md: the text down to the next heading of the same or a higher level. A title
    found in no file or in several fails, naming the count."""
    found = []
    for path in doc_files():
        lines = path.read_text().split("\n")
        headings = _headings(lines)
        for position, (start, level, name) in enumerate(headings):
            if name != title:
                continue
            later = (i for i, other, _ in headings[position + 1 :] if other <= level)
            end = next(later, len(lines))
            found.append((_name(path), "\n".join(lines[start + 1 : end])))
    assert len(found) == 1, f"{len(found)} sections headed {title!r} in README.md and docs/"
    return found[0]


def blocks(text: str, file: str = "") -> list[Block]:
    """Every fenced code block in ``text``, in order."""
    result = []
    language, start = "", -1
    lines = text.split("\n")
    for index, line in enumerate(lines):
        fence = FENCE.match(line)
        if not fence:
            continue
        if start < 0:
            language, start = fence.group(1), index + 1
        else:
            result.append(Block(file, language, "\n".join(lines[start:index]) + "\n"))
            start = -1
    return result


def block(title: str, language: str) -> str:
    """The first ``language`` block in the section headed ``title``."""
    file, text = section(title)
    found = [b.text for b in blocks(text, file) if b.language == language]
    assert found, f"no {language} block under {title!r} in {file}"
    return found[0]


def every_block() -> list[Block]:
    """Every fenced code block of README.md and docs/*.md."""
    return [b for path in doc_files() for b in blocks(path.read_text(), _name(path))]


def readme_model_list() -> list[dict[str, Any]]:
    """The ``model_list`` of the first YAML block under "The example"."""
    model_list: list[dict[str, Any]] = yaml.safe_load(block("The example", "yaml"))["model_list"]
    return model_list
