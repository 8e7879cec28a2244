-- ARGV[4] actual minus reserved tokens; ARGV[5] '' (release), 'r' (fail with retry_after
-- ARGV[6]) or 'p' (fail under the policy: more than ARGV[6] failures within the last 60 s,
-- FAILURE_WINDOW, start a cooldown of ARGV[7] seconds). The failure set scores lease ids
-- by the moment they failed.
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
