"""Every expected failure of the command line is one line on stderr with a documented
exit status: 1 for an invalid config, 2 for a usage error; never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from clirun import entry, run, write


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "--help")
    assert result.status == 0
    statuses = re.findall(r"^  ([0-2])  ", result.out, re.M)
    assert statuses == ["0", "1", "2"]
    for command in ("check", "explain", "simulate", "flatten"):
        assert "exit status:" in run(capsys, command, "--help").out


@pytest.mark.parametrize("command", ["check", "flatten", "simulate"])
def test_a_missing_file_is_one_line_with_status_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    result = run(capsys, command, str(missing))
    assert result.status == 2
    assert result.err == f"ratetree {command}: cannot open {missing}: No such file or directory\n"


def test_a_directory_is_not_a_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = run(capsys, "check", str(tmp_path))
    assert result.status == 2
    assert result.err.startswith(f"ratetree check: cannot open {tmp_path}: ")
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("model_list:\n  - model_name: a\n   litellm_params: {model: x}\n", 3),
        ("model_list:\n  - {model_name: a, litellm_params: {model: x}\n", 3),
        ("model_list:\n  - model_name: 'open\n\n", 4),
    ],
)
def test_yaml_that_does_not_parse_names_its_line_with_status_1(
    text: str, line: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    result = run(capsys, "check", str(path))
    assert result.status == 1
    assert result.err.startswith(f"ratetree check: {path}:{line}: invalid YAML: ")
    assert len(result.err.splitlines()) == 1


def test_text_that_is_not_utf8_is_an_invalid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(b"model_list: \xff\n")
    result = run(capsys, "check", str(path))
    assert (result.status, result.err.count("\n")) == (1, 1)
    assert "not UTF-8" in result.err


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"litellm_settings": {}}, "expected a LiteLLM config with a model_list"),
        ("just text", "expected a LiteLLM config with a model_list"),
        ({"model_list": "x"}, "model_list 'x' must be a list of entries"),
        ({"model_list": [], "router_settings": [1]}, "router_settings [1] must be a mapping"),
        (
            {"model_list": [entry("a", "p/x")], "router_settings": {"routing_strategy": "fastest"}},
            "routing_strategy 'fastest' is not supported",
        ),
    ],
)
def test_a_document_of_the_wrong_shape_is_an_invalid_config(
    document: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.yaml", document)
    result = run(capsys, "check", path)
    assert result.status == 1
    assert result.err.startswith(f"ratetree check: {path}: ")
    assert message in result.err
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["bogus"],
        ["check"],
        ["explain", "c.yaml"],
        ["simulate", "--rps", "0"],
        ["simulate", "--rps", "x"],
        ["simulate", "--rps", "1", "--trace", "t.csv"],
        ["simulate", "--duration", "inf"],
        ["simulate", "--tokens", "-1"],
        ["simulate", "--format", "xml"],
    ],
)
def test_bad_arguments_are_one_line_with_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(capsys, *argv)
    assert result.status == 2
    assert result.out == ""
    assert len(result.err.splitlines()) == 1
    assert result.err.startswith("ratetree")
    assert "--help" in result.err


def test_an_unwritable_output_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "c.yaml", [entry("a", "p/x")])
    target = tmp_path / "no" / "such" / "dir.yaml"
    result = run(capsys, "flatten", config, "-o", str(target))
    assert result.status == 2
    assert result.err.startswith(f"ratetree flatten: cannot open {target}: ")
