"""The Lua scripts that keep shared gate state in Redis, one atomic round trip each. They
live beside this module as ``lua/*.lua`` (package data); each script is the prelude
followed by its own part.

Every script gets the same arguments, so one prelude parses them:

- ``KEYS``: per gate its state hash and its in-flight sorted set, in path order (the
  deployment last); ``settle`` adds the deployment's failure set at the end.
- ``ARGV[1]``: the time to use, or ``''`` for the server's ``TIME`` (the default: replicas
  with skewed clocks agree); ``ARGV[2]``: the number of gates; ``ARGV[3]``: the lease id;
  ``ARGV[4..7]``: arguments of the operation; from ``ARGV[8]`` per gate its in-flight cap
  (0 for none), its bucket count, and per bucket field name, kind (``r`` requests or ``t``
  tokens), interval, period and capacity.

A gate's hash holds ``c`` (cooling until) and one field per bucket: the moment it is full
again, as in ``core.buckets``. A missing field means "in the past": a full bucket, no cooldown.
The in-flight set scores each lease id by its expiry; expired entries are dropped before
every count, so a dead replica's leases free their slots after the lease TTL.

The arithmetic is written exactly as ``core.buckets`` and ``core.selection.commit`` write it (same
operations in the same order, doubles printed with 17 digits), so with a given clock the
shared state equals the in-memory state bit for bit.

Every script answers ``{status, now, then per gate: cooling until, in-flight count (-1
when uncapped), each bucket's full-again moment}`` with ``''`` for "in the past", so the
replica can copy the authoritative state of the gates into its local view.
"""

from __future__ import annotations

from importlib import resources


def _lua(name: str) -> str:
    return resources.files("ratetree.state").joinpath(f"lua/{name}.lua").read_text("utf-8")


PRELUDE = _lua("prelude")
#: Checks every gate of a path, then takes from all of them or from none.
COMMIT = PRELUDE + _lua("commit")
#: A release or failure: frees the slots, settles tokens, records a cooldown.
SETTLE = PRELUDE + _lua("settle")
#: Reads the gates (dropping expired leases) and changes nothing else.
READ = PRELUDE + _lua("read")
#: Extends a lease's expiry in the in-flight sets that still hold it.
RENEW = PRELUDE + _lua("renew")
