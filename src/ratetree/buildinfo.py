"""Which build of ratetree is running: the hot path compiled by mypyc, or pure Python
(docs/development.md, "The compiled build"). ``ratetree.compiled`` re-exports it."""

from __future__ import annotations

from ratetree.core import buckets

#: True when the hot-path modules are compiled extension modules (a wheel built where a
#: C compiler was available); False for the pure-Python build (editable installs, a
#: wheel built with RATETREE_COMPILE=0 or without a compiler). One is compiled only
#: with all the others, so one module tells for all.
COMPILED: bool = not str(buckets.__file__).endswith(".py")

#: How reports name the build.
BUILD = "compiled" if COMPILED else "pure Python"
