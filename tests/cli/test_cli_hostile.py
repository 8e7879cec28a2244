"""Hostile and degenerate inputs through the command line: each ends quickly, within a
memory limit, with one line on stderr and the documented status."""

from __future__ import annotations

from pathlib import Path

import pytest

from clirun import entry, run, write
from limited import run_cli

# Nine levels of nine aliases: about 390 million strings once expanded, in ~700 bytes.
BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['lol'] * 9)}]\n"
    for prev, name in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)

PLACEMENTS = {
    "model_list": "model_list: *i\n",
    "entry": "model_list: [*i]\n",
    "litellm_params value": (
        "model_list:\n  - model_name: m\n    litellm_params: {model: p/x, extra: *i}\n"
    ),
    "model_info value": (
        "model_list:\n  - model_name: m\n    litellm_params: {model: p/x}\n"
        "    model_info: {extra: *i}\n"
    ),
    "model_name": "model_list:\n  - model_name: *i\n    litellm_params: {model: p/x}\n",
    "rpm": "model_list:\n  - model_name: m\n    litellm_params: {model: p/x, rpm: *i}\n",
    "model_group_alias": (
        "model_list:\n  - model_name: m\n    litellm_params: {model: p/x}\n"
        "router_settings:\n  model_group_alias: {x: *i}\n"
    ),
}


def one_line(text: str) -> str:
    lines = text.splitlines()
    assert len(lines) == 1, text[:2000]
    return lines[0]


@pytest.mark.parametrize("place", list(PLACEMENTS))
def test_an_alias_bomb_is_refused_in_one_line_within_the_limits(tmp_path: Path, place: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB + PLACEMENTS[place])
    assert len(path.read_bytes()) < 1000
    done = run_cli("check", str(path))
    assert done.returncode == 1, done.stderr[-2000:]
    line = one_line(done.stderr)
    assert line.startswith(f"ratetree check: {path}")
    assert "1,000,000" in line
    assert len(line) < 300


def test_a_file_over_the_size_limit_is_refused_before_it_is_parsed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "big.yaml"
    row = "  - model_name: m\n    litellm_params: {model: p/x}\n"
    path.write_text("model_list:\n" + row * (21 * 1024 * 1024 // len(row)))
    result = run(capsys, "check", str(path))
    assert result.status == 1
    assert one_line(result.err) == (
        f"ratetree check: {path}: larger than 20,971,520 bytes, the most read"
    )


@pytest.mark.parametrize(("char", "code"), [("\x00", "#x0000"), ("\x1b", "#x001b")])
def test_a_control_character_is_one_line_naming_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], char: str, code: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"model_list:\n  - model_name: a{char}\n")
    result = run(capsys, "check", str(path))
    assert result.status == 1
    assert one_line(result.err).startswith(
        f"ratetree check: {path}:2: invalid YAML: character {code}"
    )


def test_an_integer_too_long_to_read_is_an_invalid_config_naming_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"model_list:\n  - model_name: a\n    litellm_params: {{model: p/x, rpm: {'1' * 5000}}}\n"
    )
    result = run(capsys, "check", str(path))
    assert result.status == 1
    assert one_line(result.err) == (
        f"ratetree check: {path}:3: an integer of 5,000 digits; at most 4,300 are read"
    )


def test_deep_nesting_is_an_invalid_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("model_list: " + "[" * 500 + "]" * 500 + "\n")
    result = run(capsys, "check", str(path))
    assert result.status == 1
    assert one_line(result.err).startswith(f"ratetree check: {path}")


def test_a_huge_value_gives_a_short_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = "m" * 1_000_000
    path = write(tmp_path / "c.yaml", {"model_list": [entry(name, "p/x", rpm=-1)]})
    result = run(capsys, "check", path)
    assert result.status == 1
    assert len(one_line(result.err)) < 400


def test_a_config_too_deep_is_refused_naming_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chain = [entry(f"g{i}", f"g{i + 1}") for i in range(2000)] + [entry("g2000", "p/x")]
    path = write(tmp_path / "c.yaml", {"model_list": chain})
    result = run(capsys, "check", path)
    assert result.status == 1
    assert "the limit is 100 levels" in one_line(result.err)


def diamonds(depth: int) -> list[dict[str, object]]:
    """Stacked diamonds as a model_list: a{i} -> b{i}, c{i} -> a{i+1}."""
    model_list = []
    for i in range(depth):
        model_list += [
            entry(f"a{i}", f"b{i}"),
            entry(f"a{i}", f"c{i}"),
            entry(f"b{i}", f"a{i + 1}"),
            entry(f"c{i}", f"a{i + 1}"),
        ]
    return [*model_list, entry(f"a{depth}", "p/x", tpm=1000)]


def test_check_draws_a_group_shared_along_many_paths_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path / "c.yaml", {"model_list": diamonds(20)})
    result = run(capsys, "check", path)
    assert result.status == 0
    lines = result.out.splitlines()
    # The header and the top; per diamond two sides, the shared bottom and one line
    # referring back to it; the deployment.
    assert len(lines) == 2 + 4 * 20 + 1
    assert sum("[members as shown above]" in line for line in lines) == 20


def test_explain_of_diamonds_ends_within_the_limits(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", {"model_list": diamonds(20)})
    done = run_cli("explain", path, "a0", "--tokens", "600", cpu_seconds=10)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(done.stdout.splitlines()) < 100


def test_a_trace_in_unix_time_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("1732960000,fast\n")
    result = run(capsys, "simulate", "--trace", str(trace))
    assert result.status == 2
    assert "not Unix time" in one_line(result.err)


def test_a_duration_past_the_span_limit_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run(capsys, "simulate", "--duration", "1e12")
    assert result.status == 2
    assert "must be at most 604800" in one_line(result.err)
