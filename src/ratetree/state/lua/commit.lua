-- ARGV[4] tokens, ARGV[5] lease TTL. Checks every gate, then takes from all or none.
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
