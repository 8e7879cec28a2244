"""The README and docs/ show what the code does: command outputs are what the commands
print, examples run as written and print what is pasted after them, and the commands the
README gives are the ones CI runs."""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from clirun import run
from examples import ROOT, Block, block, blocks, doc_files, every_block, readme_model_list, section
from ratetree import ConfigError, Scheduler
from ratetree.cli.config_file import read_config
from ratetree.testing import FakeClock

README = ROOT / "README.md"


def console_blocks() -> list[tuple[Block, str, str]]:
    """(block, command, pasted output) for every console block that runs ``ratetree``, in
    README.md and docs/*.md."""
    found = []
    for b in every_block():
        match = re.fullmatch(r"\$ ratetree (.*?)\n(.*)", b.text, re.S)
        if b.language == "console" and match:
            found.append((b, match.group(1), match.group(2)))
    return found


@pytest.fixture
def example_dir(tmp_path: Path) -> Path:
    """A directory holding the README's example as config.yaml, as the docs assume."""
    (tmp_path / "config.yaml").write_text(block("The example", "yaml"))
    return tmp_path


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def run_as_in_docs(
    capsys: pytest.CaptureFixture[str], where: Path, command: str
) -> tuple[int, str]:
    """``ratetree command`` with file arguments inside ``where``; stdout then stderr, with
    ``where`` taken back out of the text so it reads as run from that directory."""
    argv = [str(where / a) if a.endswith(".yaml") else a for a in shlex.split(command)]
    result = run(capsys, *argv)
    printed = (result.out + result.err).replace(f"{where}/", "")
    # simulate names the build it ran on; the docs show the pure one (an editable install)
    return result.status, printed.replace("; compiled\n", "; pure Python\n")


def test_the_two_commands_are_an_install_and_the_test_command_ci_runs() -> None:
    _, text = section("Two commands")
    install, tests = (b.text for b in blocks(text) if b.language == "sh")
    assert install == "python3 -m venv .venv && .venv/bin/pip install -q -e '.[litellm]'\n"
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    (venv,) = (line for line in ci if line.startswith("python3 -m venv"))
    assert ".venv/bin/python -m pytest" in ci
    assert tests == f"{venv} && .venv/bin/python -m pytest\n"


def test_the_readme_stays_a_front_door_of_at_most_30_kb() -> None:
    assert len(README.read_bytes()) <= 30_000


def test_every_command_output_in_the_docs_is_what_the_command_prints(
    capsys: pytest.CaptureFixture[str], example_dir: Path
) -> None:
    found = console_blocks()
    commands = {command.split()[0] for _, command, _ in found}
    assert {"simulate", "check", "explain", "flatten"} <= commands, "the docs lost outputs"
    for where, command, pasted in found:
        # A block that reads a config of its own would fail obscurely: say which file.
        read = next((a for a in shlex.split(command) if a.endswith(".yaml")), "config.yaml")
        assert (example_dir / read).exists(), f"{where.file}: `ratetree {command}` reads {read}"
        status, printed = run_as_in_docs(capsys, example_dir, command)
        assert status == 0, (where.file, command)
        assert printed == pasted, (where.file, command)


def test_the_flat_versus_composed_figures_are_what_simulate_prints(
    capsys: pytest.CaptureFixture[str], example_dir: Path
) -> None:
    def admitted(config: str, options: str) -> tuple[collections.Counter[str], int]:
        command = f"simulate {config} {options} --format json"
        status, printed = run_as_in_docs(capsys, example_dir, command)
        assert status == 0
        data = json.loads(printed)
        counts: collections.Counter[str] = collections.Counter()
        for row in data["deployments"]:
            counts[row["label"]] += row["admitted"]
        return counts, data["requests"]

    assert run_as_in_docs(capsys, example_dir, "flatten config.yaml -o flat.yaml")[0] == 0
    text = " ".join(section("Composed `order` is not flat `order`")[1].split())
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


def test_the_first_python_example_of_the_readme_runs_as_written_and_prints_what_is_shown(
    example_dir: Path,
) -> None:
    readme = blocks(README.read_text())
    first = next(i for i, b in enumerate(readme) if b.language == "python")
    shown = readme[first + 1]
    assert shown.language == "text"
    out = io.StringIO()
    with working_directory(example_dir), contextlib.redirect_stdout(out):
        exec(readme[first].text, {"__name__": "readme"})
    assert out.getvalue() == shown.text


class Sent:
    """A stand-in for a provider call: records the deployment, answers with usage."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.to: list[str] = []

    def __call__(self, deployment: dict[str, Any]) -> dict[str, Any]:
        self.to.append(deployment["litellm_params"]["model"])
        if self.error is not None:
            raise self.error
        return {"usage": {"total_tokens": 700}}


def test_the_library_recipe_settles_its_lease_on_every_outcome() -> None:
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(block("As a library", "python"), namespace)
    complete, rate_limited = namespace["complete"], namespace["ProviderRateLimited"]
    clock = FakeClock()
    scheduler = Scheduler.from_litellm(readme_model_list(), clock=clock)
    group, cerebras = "fast/GPT-OSS-120b", "cerebras/gpt-oss-120b"

    assert complete(scheduler, group, 1000, Sent()) == {"usage": {"total_tokens": 700}}
    refused = rate_limited()
    refused.retry_after = 30.0
    send = Sent(refused)
    with pytest.raises(rate_limited):
        complete(scheduler, group, 1000, send)
    assert send.to == [cerebras]
    with pytest.raises(RuntimeError):
        complete(scheduler, group, 1000, Sent(RuntimeError("connection reset")))
    deployments = scheduler.snapshot().deployments.values()
    assert [d.in_flight for d in deployments] == [0, 0, 0]
    # The 429 cooled cerebras down for its retry_after; one plain failure cools nothing.
    assert sorted(d.cooling_for for d in deployments) == [0.0, 0.0, 30.0]


def test_the_hand_built_tree_example_runs() -> None:
    namespace: dict[str, object] = {}
    exec(block("Building a tree by hand", "python"), namespace)
    scheduler = namespace["scheduler"]
    assert isinstance(scheduler, Scheduler)
    assert scheduler.acquire("fast").path == ("fast", "gpt", "cerebras")


def test_the_cycle_error_quoted_in_the_docs_is_the_one_raised() -> None:
    text = "\n".join(path.read_text() for path in doc_files())
    quoted = re.search(r"`(model_list\[3\] [^`]*closes a cycle[^`]*)`", text)
    assert quoted
    model_list = [
        {"model_name": "fast/a", "litellm_params": {"model": "p/x"}},
        {"model_name": "fast", "litellm_params": {"model": "p/y"}},
        {"model_name": "fast/a", "litellm_params": {"model": "fast"}},
        {"model_name": "fast", "litellm_params": {"model": "fast/a"}},
    ]
    with pytest.raises(ConfigError) as caught:
        Scheduler.from_litellm(model_list)
    assert str(caught.value) == quoted.group(1)


def test_the_packaged_example_config_is_the_readme_example() -> None:
    assert read_config(None).model_list == readme_model_list()


def test_importing_ratetree_does_not_import_yaml_as_docs_cli_says() -> None:
    command = "import ratetree, sys; print('yaml' in sys.modules)"
    said = " ".join(section("Why PyYAML is a dependency")[1].split())
    assert f'`python -c "{command}"` prints `False`' in said
    out = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, check=True
    ).stdout
    assert out == "False\n"


def test_the_performance_summary_quotes_the_report_in_docs_benchmarks() -> None:
    """The README's figures are rounded from docs/benchmarks.md; those quoted as printed
    must appear there, and the report must be of the commit the README names."""
    summary = section("Performance")[1]
    report = (ROOT / "docs" / "benchmarks.md").read_text()
    commit = re.search(r"commit `([0-9a-f]+)`", summary)
    assert commit and f"ratetree commit `{commit.group(1)}`" in report
    assert "benchmarks/run.py" in summary
    for figure in ["620 ms", "124,702x", "0.15 µs", "95%"]:
        assert figure in summary and figure in report, figure
