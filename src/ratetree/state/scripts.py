"""The Lua scripts that keep shared gate state in Redis, one atomic round trip each.

Every script gets the same arguments, so one prelude parses them:

- ``KEYS``: per gate its state hash and its in-flight sorted set, in path order (the
  deployment last); ``settle`` adds the deployment's failure set at the end.
- ``ARGV[1]``: the time to use, or ``''`` for the server's ``TIME`` (the default: replicas
  with skewed clocks agree); ``ARGV[2]``: the number of gates; ``ARGV[3]``: the lease id;
  ``ARGV[4..7]``: arguments of the operation; from ``ARGV[8]`` per gate its in-flight cap
  (0 for none), its bucket count, and per bucket field name, kind (``r`` requests or ``t``
  tokens), interval, period and capacity.

A gate's hash holds ``c`` (cooling until) and one field per bucket: the moment it is full
again, as in ``_buckets``. A missing field means "in the past": a full bucket, no cooldown.
The in-flight set scores each lease id by its expiry; expired entries are dropped before
every count, so a dead replica's leases free their slots after the lease TTL.

The arithmetic is written exactly as ``_buckets`` and ``_selection.commit`` write it (same
operations in the same order, doubles printed with 17 digits), so with a given clock the
shared state equals the in-memory state bit for bit.

Every script answers ``{status, now, then per gate: cooling until, in-flight count (-1
when uncapped), each bucket's full-again moment}`` with ``''`` for "in the past", so the
replica can copy the authoritative state of the gates into its local view.
"""

from __future__ import annotations

PRELUDE = """
local function fmt(x) return string.format('%.17g', x) end

local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
-- as _buckets.tolerance: now + (1e-9 + |now| * 1e-15), grouped the same way
local horizon = now + (1e-9 + math.abs(now) * 1e-15)

local gates = {}
do
  local a = 8
  for g = 1, tonumber(ARGV[2]) do
    local gate = {hash = KEYS[2 * g - 1], busy = KEYS[2 * g], cap = tonumber(ARGV[a]), b = {}}
    local nb = tonumber(ARGV[a + 1])
    a = a + 2
    local fields = {'c'}
    for i = 1, nb do
      gate.b[i] = {f = ARGV[a], tok = ARGV[a + 1] == 't', interval = tonumber(ARGV[a + 2]),
                   period = tonumber(ARGV[a + 3]), capacity = tonumber(ARGV[a + 4])}
      fields[i + 1] = ARGV[a]
      a = a + 5
    end
    local vals = redis.call('HMGET', gate.hash, unpack(fields))
    gate.cool = tonumber(vals[1])
    for i = 1, nb do gate.b[i].full = tonumber(vals[i + 1]) end
    if gate.cap > 0 then
      redis.call('ZREMRANGEBYSCORE', gate.busy, '-inf', fmt(now))
      gate.n = redis.call('ZCARD', gate.busy)
    else
      gate.n = -1
    end
    gates[g] = gate
  end
end

local function write(gate)
  local args = {}
  if gate.cool then args[1] = 'c'; args[2] = fmt(gate.cool) end
  for _, b in ipairs(gate.b) do
    if b.full then args[#args + 1] = b.f; args[#args + 1] = fmt(b.full) end
  end
  if #args > 0 then redis.call('HSET', gate.hash, unpack(args)) end
end

-- Bucket.take: (full_at if full_at > now else now) + units * interval
local function take(b, units)
  local f = b.full
  if not f or not (f > now) then f = now end
  b.full = f + units * b.interval
end

local function report(status)
  local out = {tostring(status), fmt(now)}
  for _, gate in ipairs(gates) do
    out[#out + 1] = gate.cool and fmt(gate.cool) or ''
    out[#out + 1] = tostring(gate.n)
    for _, b in ipairs(gate.b) do out[#out + 1] = b.full and fmt(b.full) or '' end
  end
  return out
end
"""

#: ARGV[4] tokens, ARGV[5] lease TTL. Checks every gate, then takes from all or none.
COMMIT = (
    PRELUDE
    + """
local tokens = tonumber(ARGV[4])
for _, gate in ipairs(gates) do
  if gate.cool and gate.cool > horizon then return report(0) end
  if gate.cap > 0 and gate.n >= gate.cap then return report(0) end
  for _, b in ipairs(gate.b) do
    local units = 1
    if b.tok then units = tokens end
    if units > b.capacity then return report(0) end
    if b.full and b.full + units * b.interval - b.period > horizon then return report(0) end
  end
end
local expires = fmt(now + tonumber(ARGV[5]))
for _, gate in ipairs(gates) do
  for _, b in ipairs(gate.b) do
    if not b.tok then take(b, 1) elseif tokens > 0 then take(b, tokens) end
  end
  if gate.cap > 0 then
    redis.call('ZADD', gate.busy, expires, ARGV[3])
    gate.n = gate.n + 1
  end
  write(gate)
end
return report(1)
"""
)

#: ARGV[4] actual minus reserved tokens; ARGV[5] '' (release), 'r' (fail with retry_after
#: ARGV[6]) or 'p' (fail under the policy: more than ARGV[6] failures within the last 60 s,
#: ``FAILURE_WINDOW``, start a cooldown of ARGV[7] seconds). The failure set scores lease
#: ids by the moment they failed.
SETTLE = (
    PRELUDE
    + """
local diff = tonumber(ARGV[4])
local mode = ARGV[5]
if mode ~= '' then
  local d = gates[#gates]
  local till = nil
  if mode == 'r' then
    till = now + tonumber(ARGV[6])
  else
    local fails = KEYS[2 * #gates + 1]
    redis.call('ZADD', fails, fmt(now), ARGV[3])
    redis.call('ZREMRANGEBYSCORE', fails, '-inf', fmt(now - 60))
    if redis.call('ZCARD', fails) > tonumber(ARGV[6]) then till = now + tonumber(ARGV[7]) end
  end
  if till and (not d.cool or till > d.cool) then d.cool = till end
end
for _, gate in ipairs(gates) do
  if gate.cap > 0 and redis.call('ZREM', gate.busy, ARGV[3]) == 1 then gate.n = gate.n - 1 end
  if diff > 0 then
    for _, b in ipairs(gate.b) do if b.tok then take(b, diff) end end
  elseif diff < 0 then
    -- Bucket.give_back: full_at - units * interval, never before now
    for _, b in ipairs(gate.b) do
      if b.tok and b.full then
        local f = b.full - (-diff) * b.interval
        if not (f > now) then f = now end
        b.full = f
      end
    end
  end
  write(gate)
end
return report(1)
"""
)

#: Reads the gates (dropping expired leases) and changes nothing else.
READ = PRELUDE + "\nreturn report(1)\n"
