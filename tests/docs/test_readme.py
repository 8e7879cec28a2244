"""The README shows what the code does: its command outputs are what the commands print,
and its examples run as written."""

from __future__ import annotations

import collections
import json
import re
import shlex
from pathlib import Path

import pytest

from clirun import run
from examples import readme_model_list
from ratetree import ConfigError, Scheduler
from ratetree.cli.config_file import read_config

README = (Path(__file__).parents[2] / "README.md").read_text()


def block_after(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match, f"no {language} block after {heading!r}"
    return match.group(1)


def command_line_section() -> str:
    return README.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]


def console_blocks() -> list[tuple[str, str]]:
    """(command, pasted output) for every console block under "## Command line"."""
    blocks = re.findall(r"```console\n\$ ratetree (.*?)\n(.*?)```", command_line_section(), re.S)
    assert len(blocks) >= 4, "the README lost its command outputs"
    return blocks


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """A directory holding the README's example as config.yaml, as the README assumes."""
    section = README.split("## The example", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match
    (tmp_path / "config.yaml").write_text(match.group(1))
    return tmp_path


def run_as_in_readme(
    capsys: pytest.CaptureFixture[str], where: Path, command: str
) -> tuple[int, str]:
    """``ratetree command`` with file arguments inside ``where``; stdout then stderr, with
    ``where`` taken back out of the text so it reads as run from that directory."""
    argv = [str(where / a) if a.endswith(".yaml") else a for a in shlex.split(command)]
    result = run(capsys, *argv)
    return result.status, (result.out + result.err).replace(f"{where}/", "")


def test_the_main_job_in_two_commands_is_ratetree_simulate() -> None:
    two_commands = README.split("## Two commands", 1)[1].split("\n## ", 1)[0]
    assert two_commands.count(".venv/bin/ratetree simulate\n") == 1
    assert [command for command, _ in console_blocks()].count("simulate") == 1


def test_every_command_output_in_the_readme_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], example_dir: Path
) -> None:
    for command, pasted in console_blocks():
        status, printed = run_as_in_readme(capsys, example_dir, command)
        assert status == 0, command
        assert printed == pasted, command


def test_the_flat_versus_composed_figures_are_what_simulate_prints(
    capsys: pytest.CaptureFixture[str], example_dir: Path
) -> None:
    def admitted(config: str, options: str) -> tuple[collections.Counter[str], int]:
        command = f"simulate {config} {options} --format json"
        status, printed = run_as_in_readme(capsys, example_dir, command)
        assert status == 0
        data = json.loads(printed)
        counts: collections.Counter[str] = collections.Counter()
        for row in data["deployments"]:
            counts[row["label"]] += row["admitted"]
        return counts, data["requests"]

    assert run_as_in_readme(capsys, example_dir, "flatten config.yaml -o flat.yaml")[0] == 0
    text = " ".join(command_line_section().split())
    glm = "cerebras/zai-glm-4.7"
    flat, requests = admitted("flat.yaml", "--group fast --rps 0.5")
    composed, _ = admitted("config.yaml", "--rps 0.5")
    assert (
        f"`ratetree simulate flat.yaml --group fast --rps 0.5` (after `ratetree flatten "
        f"config.yaml -o flat.yaml`) sends glm {flat[glm]} of {requests} requests; `ratetree "
        f"simulate config.yaml --rps 0.5` sends it {composed[glm]}."
    ) in text
    both = "--group fast --group fast/GPT-OSS-120b --rps 2"
    flat, composed = admitted("flat.yaml", both)[0], admitted("config.yaml", both)[0]
    assert (
        f"`ratetree simulate flat.yaml {both}` admits {flat['cerebras/gpt-oss-120b']} requests "
        f"on cerebras/gpt-oss-120b and {flat['groq/openai/gpt-oss-120b']} on groq, where their "
        f"rpm (5 and 30, full at the start) allow at most {5 + 5 * 5} and {30 + 30 * 5}; the "
        f"same command on `config.yaml` admits {composed['cerebras/gpt-oss-120b']} and "
        f"{composed['groq/openai/gpt-oss-120b']}."
    ) in text


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


def test_the_packaged_example_config_is_the_readme_example() -> None:
    assert read_config(None).model_list == readme_model_list()
