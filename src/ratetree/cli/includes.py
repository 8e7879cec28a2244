"""``include:`` in a proxy config.yaml, merged as LiteLLM's proxy merges it.

What the proxy does (``litellm/proxy/common_utils/config_includes.py``,
``resolve_includes`` and ``resolve_include_file_path``, called from
``ProxyConfig._process_includes`` in ``proxy_server.py``):

- ``include`` must be a list of strings; each names a file relative to the config that
  declares it, or (for configs written before nesting worked) relative to the root config
  when only that file exists.
- Included files are read in order, each file's own includes queued after those already
  pending; a file already read is skipped.
- An included file must be a mapping. Its list values extend the config's lists
  (``model_list`` entries are appended); every other value replaces the config's.
- A file that does not exist stops the proxy (FileNotFoundError).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from ratetree.core.validate import show
from ratetree.errors import ConfigError

KEY = "include"


class Parsed(NamedTuple):
    """A parsed config document and the ``file:line`` of each of its model_list entries."""

    document: Any
    places: tuple[str, ...]


def _entries(document: Mapping[Any, Any], name: str) -> list[str]:
    if KEY not in document:
        return []
    entries = document[KEY]
    if not isinstance(entries, list) or not all(isinstance(e, str) for e in entries):
        raise ConfigError(f"{name}: {KEY} {show(entries)} must be a list of file paths")
    return entries


def _locate(entry: str, declared_in: str, root: str) -> str:
    beside = os.path.normpath(os.path.join(os.path.dirname(declared_in), entry))
    at_root = os.path.normpath(os.path.join(os.path.dirname(root), entry))
    if not os.path.exists(beside) and os.path.exists(at_root):
        return at_root
    return beside


def _merge(base: Parsed, included: Parsed) -> Parsed:
    document = dict(base.document)
    places = base.places
    for key, value in included.document.items():
        if key == KEY:
            continue
        if isinstance(value, list) and isinstance(document.get(key), list):
            document[key] = [*document[key], *value]
            if key == "model_list":
                places = (*places, *included.places)
        else:
            document[key] = value
            if key == "model_list":
                places = included.places
    return Parsed(document, places)


def merge_includes(root: Parsed, name: str, read: Callable[[str], Parsed]) -> Parsed:
    """``root`` (the config at path ``name``) with every included file merged in and the
    ``include`` key removed. ``read(path)`` parses one file.

    Raises ConfigError for an ``include`` that is not a list of paths, an included file
    that does not exist or is not a mapping (naming the config that includes it), and
    whatever ``read`` raises (OSError for a file that cannot be read).
    """
    merged = Parsed({k: v for k, v in root.document.items() if k != KEY}, root.places)
    pending = [(entry, name) for entry in _entries(root.document, name)]
    loaded = {os.path.abspath(name)}
    while pending:
        entry, declared_in = pending.pop(0)
        path = _locate(entry, declared_in, name)
        if os.path.abspath(path) in loaded:
            continue
        if not os.path.exists(path):
            raise ConfigError(f"{declared_in}: {KEY} {entry!r}: no such file {path}")
        included = read(path)
        if not isinstance(included.document, Mapping):
            raise ConfigError(
                f"{declared_in}: {KEY} {entry!r}: {path} is not a YAML mapping "
                f"(got {show(included.document)})"
            )
        merged = _merge(merged, included)
        pending += [(e, path) for e in _entries(included.document, path)]
        loaded.add(os.path.abspath(path))
    return merged
