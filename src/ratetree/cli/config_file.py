"""Read a LiteLLM proxy ``config.yaml`` (or a bare model_list file) for the command line.

The proxy file keeps ``model_list`` at the top and the router's settings under
``router_settings``; ratetree reads ``routing_strategy``, ``routing_strategy_args`` and
``model_group_alias`` from there. Its own settings (``group_limits``,
``group_strategies``) sit under a top-level ``ratetree:`` key, which the proxy's
``load_config`` never reads. ``include:`` files are
merged first, as the proxy merges them (see :mod:`ratetree.cli.includes`). A file that is
just a YAML list is taken as the model_list itself. Errors point at the file and, where
YAML knows it, the line.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import attrs
import yaml

from ratetree.cli.includes import Parsed, merge_includes
from ratetree.config.expansion import MAX_EXPANSION, MAX_NESTING
from ratetree.config.litellm import load_litellm
from ratetree.config.values import refuse_unknown
from ratetree.core.specs import TreeSpec
from ratetree.core.validate import clip, show
from ratetree.errors import ConfigError

EXAMPLE = "<packaged example>"
#: The top-level key for ratetree's own settings, and the settings it may hold.
SECTION = "ratetree"
SECTION_KEYS = ("group_limits", "group_strategies")
# Settings LiteLLM's Router does not take: the proxy drops them from router_settings with a
# warning, and Router(**router_settings) raises TypeError on them.
_NOT_ROUTER_SETTINGS = SECTION_KEYS

# libyaml's loader when PyYAML was built with it: the same documents and marks, faster.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT = "tag:yaml.org,2002:int"
_MAP = "tag:yaml.org,2002:map"

#: The largest config file read (20 MiB); a real model_list is far smaller.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: The longest integer read; Python refuses to convert more than 4,300 digits.
MAX_INT_DIGITS = 4_300


@attrs.frozen
class ConfigFile:
    """One parsed file (with its includes merged): the whole YAML document, the settings
    ratetree reads from it, and where (``file:line``) every model_list entry was written,
    for error messages. ``os.environ/NAME`` values are read from ``environ``."""

    name: str
    document: Any
    model_list: Any
    routing_strategy: Any
    model_group_alias: Any
    entry_places: tuple[str, ...]
    group_limits: Any = None
    group_strategies: Any = None
    routing_strategy_args: Any = None
    environ: Mapping[str, str] = attrs.field(default=os.environ, eq=False, repr=False)

    def spec(self) -> TreeSpec:
        """The tree this file describes. Raises ConfigError that starts with the file name
        and, for an entry at fault, its line: ``config.yaml:12: model_list[3] ...``."""
        try:
            return load_litellm(
                self.model_list,
                model_group_alias=self.model_group_alias,
                routing_strategy=self.routing_strategy,
                group_limits=self.group_limits,
                group_strategies=self.group_strategies,
                routing_strategy_args=self.routing_strategy_args,
                environ=self.environ,
            )
        except ConfigError as err:
            raise ConfigError(f"{self.where(str(err))}: {err}") from None

    def where(self, message: str) -> str:
        """``file:line`` when ``message`` is about ``model_list[i]``, else the file name."""
        if message.startswith("model_list["):
            index = message[len("model_list[") :].split("]", 1)[0]
            if index.isdigit() and int(index) < len(self.entry_places):
                return self.entry_places[int(index)]
        return self.name


def _entry_lines(root: yaml.Node | None) -> tuple[int, ...]:
    """The line of each model_list item, from YAML's node tree (values carry no marks)."""
    items: list[yaml.Node] = []
    if isinstance(root, yaml.SequenceNode):
        items = root.value
    elif isinstance(root, yaml.MappingNode):
        for key, value in root.value:
            if key.value == "model_list" and isinstance(value, yaml.SequenceNode):
                items = value.value
    return tuple(item.start_mark.line + 1 for item in items)


def _at(name: str, node: yaml.Node) -> str:
    return f"{name}:{node.start_mark.line + 1}"


def _check_nodes(root: yaml.Node, name: str) -> None:
    """Refuse, before any value is built, a document whose aliases would expand it by
    more than MAX_EXPANSION nodes, that nests more than MAX_NESTING levels deep (either
    counted through aliases), that refers to itself, or that holds an integer too long
    for Python to read. Sizes are remembered per node, so this is linear in the file."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (nodes once expanded, nesting levels)
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            if node.tag == _INT and len(node.value) > MAX_INT_DIGITS:
                raise ConfigError(
                    f"{_at(name, node)}: an integer of {len(node.value):,} digits; "
                    f"at most {MAX_INT_DIGITS:,} are read"
                )
            continue
        children = [v for pair in node.value for v in pair] if node.tag == _MAP else node.value
        if done:
            size, height = 1, 1
            for child in children:
                child_size, child_height = sizes.get(id(child), (1, 0))
                size += child_size
                height = max(height, child_height + 1)
            if height > MAX_NESTING:
                raise ConfigError(f"{_at(name, node)}: nested more than {MAX_NESTING} levels deep")
            sizes[id(node)] = (size, height)
            continue
        if id(node) in sizes:
            if sizes[id(node)][0] < 0:
                raise ConfigError(f"{_at(name, node)}: a YAML alias refers to a node it is in")
            continue
        sizes[id(node)] = (-1, 0)
        distinct += 1 + sum(1 for child in children if isinstance(child, yaml.ScalarNode))
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    if sizes.get(id(root), (1, 0))[0] - distinct > MAX_EXPANSION:
        raise ConfigError(
            f"{name}: YAML aliases expand the document by more than {MAX_EXPANSION:,} nodes"
        )


def _parse(text: str, name: str) -> tuple[Any, tuple[int, ...]]:
    """The document and its entry lines, from one pass of the parser."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None, ()
        _check_nodes(root, name)
        return loader.construct_document(root), _entry_lines(root)
    finally:
        loader.dispose()


def _parse_yaml(text: str, name: str) -> Parsed:
    try:
        document, lines = _parse(text, name)
    except ConfigError:
        raise
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = err.problem or err.context or "invalid YAML"
        raise ConfigError(f"{name}{line}: invalid YAML: {clip(problem, 200)}") from None
    except yaml.reader.ReaderError as err:
        at = text.count("\n", 0, err.position) + 1
        raise ConfigError(
            f"{name}:{at}: invalid YAML: character #x{err.character:04x} "
            f"({clip(str(err.reason), 200)})"
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(
            f"{name}: invalid YAML: {clip(' '.join(str(err).split()), 200)}"
        ) from None
    except (ValueError, RecursionError) as err:  # what the checks above let through
        message = " ".join(str(err).split())
        raise ConfigError(f"{name}: invalid YAML value: {clip(message, 200)}") from None
    return Parsed(document, tuple(f"{name}:{line}" for line in lines))


def _read_text(path: str) -> str:
    with open(path, "rb") as file:
        # Read at most one byte past the limit: a pipe or /dev/zero has no size to ask.
        data = file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES:,} bytes, the most read")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason})") from None


def ratetree_section(document: Mapping[Any, Any], name: str) -> Mapping[Any, Any]:
    """The ``ratetree:`` section of a config document (empty when absent). Raises
    ConfigError, starting with ``name``, for one that is no mapping or has unknown keys."""
    settings = document.get(SECTION)
    if settings is None:
        return {}
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{name}: {SECTION} {show(settings)} must be a mapping")
    refuse_unknown(f"{name}: {SECTION}", settings, SECTION_KEYS)
    return settings


def parse_config(
    text: str,
    name: str,
    *,
    environ: Mapping[str, str] = os.environ,
    read_text: Callable[[str], str] = _read_text,
) -> ConfigFile:
    """Parse the text of a config file called ``name`` (a path: ``include:`` entries are
    read relative to it, through ``read_text(path)``).

    Raises ConfigError for YAML that does not parse (naming its line), for a document
    that aliases expand too far, nests too deeply or holds an over-long integer, for one
    that is neither a list nor a mapping with a ``model_list``, for a bad ``include:`` or
    ``ratetree:`` section, and for ratetree's settings placed under router_settings.
    """
    parsed = _parse_yaml(text, name)
    if isinstance(parsed.document, list):
        return ConfigFile(
            name, parsed.document, parsed.document, None, None, parsed.places, environ=environ
        )
    if isinstance(parsed.document, Mapping):
        parsed = merge_includes(parsed, name, lambda path: _parse_yaml(read_text(path), path))
    document = parsed.document
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
    for key in _NOT_ROUTER_SETTINGS:
        if key in settings:
            raise ConfigError(
                f"{name}: router_settings.{key}: LiteLLM's Router takes no {key} (the proxy "
                f"drops it with a warning); put it under the top-level {SECTION}: key"
            )
    own = ratetree_section(document, name)
    return ConfigFile(
        name,
        document,
        document["model_list"],
        settings.get("routing_strategy"),
        settings.get("model_group_alias"),
        parsed.places,
        own.get("group_limits"),
        own.get("group_strategies"),
        settings.get("routing_strategy_args"),
        environ=environ,
    )


def read_config(path: str | None, environ: Mapping[str, str] = os.environ) -> ConfigFile:
    """Read and parse the config at ``path``, or the packaged example when ``path`` is None.

    Raises OSError when the file cannot be read (missing, a directory, no permission) and
    ConfigError as :func:`parse_config` does, or for a file that is not UTF-8 or is larger
    than MAX_FILE_BYTES.
    """
    if path is None:
        text = resources.files("ratetree").joinpath("examples/config.yaml").read_text("utf-8")
        return parse_config(text, EXAMPLE, environ=environ)
    return parse_config(_read_text(path), path, environ=environ)
