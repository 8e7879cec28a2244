"""Bounded work on model_list entries as YAML loaders hand them over: shared containers
(YAML aliases) are sized once each before anything spells them out, so an alias bomb is
refused instead of expanded, and an entry becomes plain JSON-ready data for hashing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ratetree.core.validate import show
from ratetree.errors import ConfigError

#: How many values shared containers (YAML aliases) may add to the entries when they are
#: expanded for fingerprinting, over one whole model_list; past it the load is refused.
#: The command line refuses a YAML document whose aliases add more nodes than this.
MAX_EXPANSION = 1_000_000
#: How deeply containers may nest inside an entry (the command line: inside a document).
MAX_NESTING = 100


class Expansion:
    """Sizes of entries as their fingerprints would spell them out, found in time linear
    in the distinct containers: a YAML alias bomb (a 700-byte file that expands to 9**9
    values) is refused before anything expands it."""

    __slots__ = ("distinct", "expanded", "keep", "sizes")

    def __init__(self) -> None:
        self.sizes: dict[int, int] = {}  # id -> expanded size, -1 while being sized
        self.keep: list[object] = []  # holds sized containers, so no id is reused
        self.distinct = 0  # values counted once however often they are shared
        self.expanded = 0  # values counted once per appearance

    def add(self, value: object) -> None:
        """Count ``value`` (an entry); raises ConfigError once the values shared
        containers add pass MAX_EXPANSION, or for a container nested too deeply or
        holding itself."""
        self.expanded += self._size(value, 0)
        if self.expanded - self.distinct > MAX_EXPANSION:
            raise ConfigError(
                f"the entries expand to more than {MAX_EXPANSION:,} values beyond their "
                f"own through shared (YAML alias) values"
            )

    def _size(self, value: object, depth: int) -> int:
        if isinstance(value, Mapping):
            items: Iterable[object] = (*value.keys(), *value.values())
        elif isinstance(value, (list, tuple)):
            items = value
        else:
            return 1
        size = self.sizes.get(id(value))
        if size is not None:
            if size < 0:
                raise ConfigError("contains itself")
            return size
        if depth >= MAX_NESTING:
            raise ConfigError(f"nests containers more than {MAX_NESTING} levels deep")
        self.sizes[id(value)] = -1
        self.keep.append(value)
        size = 1
        for item in items:
            size += self._size(item, depth + 1)
            if not isinstance(item, (Mapping, list, tuple)):
                self.distinct += 1
        self.distinct += 1
        self.sizes[id(value)] = size
        return size


def plain(value: object) -> object:
    """``value`` as JSON-ready data with string keys, so any entry can be hashed and
    compared; ``value`` has been sized by :class:`Expansion`, so this ends."""
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, str) else f"<{type(k).__name__}>{show(k)}": plain(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float)):
        return value
    return str(value)  # what json.dumps(default=str) would do
