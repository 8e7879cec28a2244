"""Read a LiteLLM proxy ``config.yaml`` (or a bare model_list file) for the command line.

The proxy file keeps ``model_list`` at the top and the router's settings under
``router_settings``; ratetree reads ``routing_strategy`` and ``model_group_alias`` from
there and ignores every other key. A file that is just a YAML list is taken as the
model_list itself. Errors point at the file and, where YAML knows it, the line.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from typing import Any

import attrs
import yaml

from ratetree.config.litellm import load_litellm
from ratetree.core.specs import TreeSpec
from ratetree.core.validate import show
from ratetree.errors import ConfigError

EXAMPLE = "<packaged example>"

# libyaml's loader when PyYAML was built with it: the same documents and marks, faster.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@attrs.frozen
class ConfigFile:
    """One parsed file: the whole YAML document, the settings ratetree reads from it, and
    the line (1-based) of every model_list entry, for error messages."""

    name: str
    document: Any
    model_list: Any
    routing_strategy: Any
    model_group_alias: Any
    entry_lines: tuple[int, ...]

    def spec(self) -> TreeSpec:
        """The tree this file describes. Raises ConfigError that starts with the file name
        and, for an entry at fault, its line: ``config.yaml:12: model_list[3] ...``."""
        try:
            return load_litellm(
                self.model_list,
                model_group_alias=self.model_group_alias,
                routing_strategy=self.routing_strategy,
            )
        except ConfigError as err:
            raise ConfigError(f"{self.where(str(err))}: {err}") from None

    def where(self, message: str) -> str:
        """``name:line`` when ``message`` is about ``model_list[i]``, else ``name``."""
        if message.startswith("model_list["):
            index = message[len("model_list[") :].split("]", 1)[0]
            if index.isdigit() and int(index) < len(self.entry_lines):
                return f"{self.name}:{self.entry_lines[int(index)]}"
        return self.name


def _entry_lines(text: str) -> tuple[int, ...]:
    """The line of each model_list item, from YAML's node tree (values carry no marks)."""
    root = yaml.compose(text, Loader=_Loader)
    items: list[yaml.Node] = []
    if isinstance(root, yaml.SequenceNode):
        items = root.value
    elif isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "model_list" and isinstance(value, yaml.SequenceNode):
                items = value.value
    return tuple(item.start_mark.line + 1 for item in items)


def parse_config(text: str, name: str) -> ConfigFile:
    """Parse the text of a config file called ``name``.

    Raises ConfigError for YAML that does not parse (naming its line) and for a document
    that is neither a list nor a mapping with a ``model_list``.
    """
    try:
        document = yaml.load(text, Loader=_Loader)  # a safe loader, C or Python
        lines = _entry_lines(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ConfigError(f"{name}{line}: invalid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{name}: invalid YAML: {err}") from None
    if isinstance(document, list):
        return ConfigFile(name, document, document, None, None, lines)
    if not isinstance(document, Mapping) or "model_list" not in document:
        raise ConfigError(
            f"{name}: expected a LiteLLM config with a model_list, or a bare list of "
            f"model_list entries; got {show(document)}"
        )
    settings = document.get("router_settings")
    if settings is None:
        settings = {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{name}: router_settings {show(settings)} must be a mapping")
    return ConfigFile(
        name,
        document,
        document["model_list"],
        settings.get("routing_strategy"),
        settings.get("model_group_alias"),
        lines,
    )


def read_config(path: str | None) -> ConfigFile:
    """Read and parse the config at ``path``, or the packaged example when ``path`` is None.

    Raises OSError when the file cannot be read (missing, a directory, no permission) and
    ConfigError as :func:`parse_config` does, or for a file that is not UTF-8.
    """
    if path is None:
        text = resources.files("ratetree").joinpath("examples/config.yaml").read_text("utf-8")
        return parse_config(text, EXAMPLE)
    with open(path, encoding="utf-8") as file:
        try:
            text = file.read()
        except UnicodeDecodeError as err:
            raise ConfigError(f"{path}: not UTF-8 text ({err.reason})") from None
    return parse_config(text, path)
