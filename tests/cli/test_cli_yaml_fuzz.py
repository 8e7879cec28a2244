"""Hypothesis: YAML documents with anchors and aliases (and now and then a corrupted
character) through ``ratetree check``. Every run ends, within the deadline, with status
0 (and only warnings on stderr) or 1 (and one line on stderr). Values are shared by
identity, so PyYAML writes them once under an anchor and refers back with aliases; each
shared value holds at most four others and there are at most six, so a document expands
at most 4**6-fold and stays small in memory."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ratetree.cli.main import main

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-10, 10**6)
    | st.just("HUGEINT")  # becomes a 5,000-digit integer, which PyYAML cannot write
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["p/x", "p/y", "g0", "g1", "5/second", "10/minute", "", "order"])
    | st.text(max_size=8)
)
KEYS = st.sampled_from(["model", "rpm", "tpm", "order", "weight", "max_parallel_requests", "id"])


@st.composite
def documents(draw: st.DrawFn) -> object:
    pool: list[object] = [draw(SCALARS) for _ in range(draw(st.integers(1, 4)))]
    for _ in range(draw(st.integers(0, 6))):
        items = draw(st.lists(st.sampled_from(pool), max_size=4))
        if draw(st.booleans()):
            pool.append(items)
        else:
            pool.append(dict(zip(draw(st.lists(KEYS, unique=True)), items, strict=False)))
    value = st.sampled_from(pool)
    entries = []
    for _ in range(draw(st.integers(0, 5))):
        params = {"model": draw(value | st.sampled_from(["p/x", "g0", "g1"]))}
        params.update(draw(st.dictionaries(KEYS, value, max_size=3)))
        entry = {"model_name": draw(value | st.sampled_from(["g0", "g1", "g2"]))}
        entry["litellm_params"] = params if draw(st.booleans()) else draw(value)
        if draw(st.booleans()):
            entry["model_info"] = draw(value)
        entries.append(entry if draw(st.integers(0, 9)) else draw(value))
    model_list = entries if draw(st.integers(0, 9)) else draw(value)
    settings_ = {"model_group_alias": draw(st.dictionaries(st.sampled_from(["a", "g1"]), value))}
    return {"model_list": model_list, "router_settings": settings_}


@settings(max_examples=150, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(documents(), st.data())
def test_check_ends_with_status_0_or_1_and_one_line_of_error(
    document: object, data: st.DataObject
) -> None:
    text = yaml.safe_dump(document, sort_keys=False).replace("HUGEINT", "7" * 5000)
    if data.draw(st.integers(0, 4)) == 0 and text:  # corrupt one character
        at = data.draw(st.integers(0, len(text) - 1))
        text = (
            text[:at]
            + data.draw(st.sampled_from(["\x00", "\x1b", ":", "[", "&", "*", "\n"]))
            + text[at + 1 :]
        )
    fd, path = tempfile.mkstemp(suffix=".yaml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["check", path])
    finally:
        os.unlink(path)
    lines = err.getvalue().splitlines()
    if status == 1:
        assert len(lines) == 1 and lines[0].startswith(f"ratetree check: {path}"), lines
    else:
        assert status == 0
        assert all(line.startswith("warning: ") for line in lines), lines
