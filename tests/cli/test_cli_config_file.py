"""Reading a proxy config.yaml: include files merged as the proxy merges them, ratetree's
own ``ratetree:`` section, and ``os.environ/NAME`` values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clirun import entry, run, write
from ratetree.cli.config_file import read_config
from ratetree.errors import ConfigError


def test_included_model_lists_are_appended_in_order_with_their_own_lines(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "more.yaml", {"model_list": [entry("b", "p/b"), entry("top", "b")]})
    models = {"include": ["sub/more.yaml"], "model_list": [entry("a", "p/a")]}
    write(tmp_path / "models.yaml", models)
    root = write(
        tmp_path / "config.yaml",
        {
            "include": ["models.yaml"],
            "model_list": [entry("top", "a")],
            "router_settings": {"routing_strategy": "least-busy"},
        },
    )
    config = read_config(root)
    assert [e["model_name"] for e in config.model_list] == ["top", "a", "b", "top"]
    assert "include" not in config.document
    assert config.entry_places == (
        f"{root}:4",
        f"{tmp_path / 'models.yaml'}:4",
        f"{tmp_path / 'sub' / 'more.yaml'}:2",
        f"{tmp_path / 'sub' / 'more.yaml'}:5",
    )
    spec = config.spec()
    assert [m.group for m in spec.groups[0].members] == ["a", "b"]
    assert {g.strategy for g in spec.groups} == {"least-busy"}


def test_an_error_in_an_included_entry_names_that_file_and_line(tmp_path: Path) -> None:
    write(tmp_path / "models.yaml", {"model_list": [entry("a", "p/a", rpm=-1)]})
    root = write(tmp_path / "config.yaml", {"include": ["models.yaml"], "model_list": []})
    with pytest.raises(ConfigError) as caught:
        read_config(root).spec()
    assert str(caught.value).startswith(f"{tmp_path / 'models.yaml'}:2: model_list[0] ")


def test_included_settings_replace_and_files_are_read_once(tmp_path: Path) -> None:
    write(
        tmp_path / "a.yaml",
        {"include": ["config.yaml", "a.yaml"], "router_settings": {"routing_strategy": "x"}},
    )
    write(tmp_path / "b.yaml", {"router_settings": {"routing_strategy": "least-busy"}})
    root = write(
        tmp_path / "config.yaml",
        {"include": ["a.yaml", "b.yaml", "a.yaml"], "model_list": [entry("a", "p/a")]},
    )
    config = read_config(root)
    assert config.routing_strategy == "least-busy"  # b.yaml came last
    assert len(config.model_list) == 1


def test_a_nested_include_found_only_beside_the_root_is_read_there(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub" / "a.yaml", {"include": ["b.yaml"]})
    write(tmp_path / "b.yaml", {"model_list": [entry("b", "p/b")]})
    root = write(tmp_path / "config.yaml", {"include": ["sub/a.yaml"], "model_list": []})
    assert [e["model_name"] for e in read_config(root).model_list] == ["b"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"include": ["nope.yaml"]}, "include 'nope.yaml': no such file"),
        ({"include": "x.yaml"}, "include 'x.yaml' must be a list of file paths"),
        ({"include": ["list.yaml"]}, "include 'list.yaml': "),
    ],
)
def test_bad_includes_are_config_errors_naming_the_including_file(
    files: dict[str, object], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "list.yaml").write_text("- a\n")
    root = write(tmp_path / "config.yaml", {**files, "model_list": []})
    result = run(capsys, "check", root)
    assert result.status == 1
    assert result.err.startswith(f"ratetree check: {root}: {message}")
    assert len(result.err.splitlines()) == 1


def test_the_ratetree_section_holds_group_limits_and_strategies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(
        tmp_path / "c.yaml",
        {
            "model_list": [entry("a", "p/a"), entry("b", "p/b"), entry("top", "a")],
            "router_settings": {"routing_strategy": "simple-shuffle"},
            "ratetree": {
                "group_limits": {"a": {"rpm": "os.environ/A_RPM"}},
                "group_strategies": {"top": "least-busy"},
            },
        },
    )
    result = run(capsys, "check", root, environ={"A_RPM": "40"})
    assert result.status == 0, result.err
    assert "top [least-busy]" in result.out
    assert "└── a [shuffle]  weight 1  (group: rpm 40/60s)" in result.out


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"ratetree": {"group_limit": {}}}, "ratetree: unknown keys 'group_limit'"),
        ({"ratetree": [1]}, "ratetree [1] must be a mapping"),
        (
            {"router_settings": {"group_limits": {"a": {"rpm": 1}}}},
            "router_settings.group_limits: LiteLLM's Router takes no group_limits",
        ),
    ],
)
def test_misplaced_or_misspelt_settings_are_refused(
    document: dict[str, object], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(tmp_path / "c.yaml", {"model_list": [entry("a", "p/a")], **document})
    result = run(capsys, "check", root)
    assert result.status == 1
    assert result.err == f"ratetree check: {root}: {message}" + result.err.split(message, 1)[1]
    assert len(result.err.splitlines()) == 1


def test_a_missing_environment_variable_is_one_line_with_status_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(tmp_path / "c.yaml", [entry("a", "p/a", tpm="os.environ/A_TPM")])
    result = run(capsys, "check", root, environ={})
    assert result.status == 1
    assert result.err == (
        f"ratetree check: {root}:1: model_list[0] (model_name 'a'): litellm_params.tpm "
        f"'os.environ/A_TPM': environment variable 'A_TPM' is not set\n"
    )
    assert run(capsys, "check", root, environ={"A_TPM": "900"}).status == 0


def test_the_section_is_a_key_litellm_documents_nowhere() -> None:
    # If LiteLLM ever reads a top-level `ratetree` key, the section must move.
    litellm = pytest.importorskip("litellm", reason="needs the litellm extra")
    from litellm.proxy._types import ConfigYAML

    assert "ratetree" not in ConfigYAML.model_fields
    del litellm


def test_yaml_dump_of_the_merged_document_has_no_include(tmp_path: Path) -> None:
    write(tmp_path / "m.yaml", {"model_list": [entry("a", "p/a")]})
    root = write(tmp_path / "c.yaml", {"include": ["m.yaml"], "model_list": []})
    assert "include" not in yaml.safe_dump(read_config(root).document)
