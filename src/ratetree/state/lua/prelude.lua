-- ratetree: the shared prelude every script starts with (see ratetree/state/scripts.py).
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
