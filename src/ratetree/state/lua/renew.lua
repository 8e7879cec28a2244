-- ARGV[4] the lease's new time to live. Moves the lease's expiry in every capped gate's
-- in-flight set to now + TTL, never earlier than it was (GT), and only where the lease is
-- still held (XX): one the prelude found expired is not brought back.
local expires = fmt(now + tonumber(ARGV[4]))
for _, gate in ipairs(gates) do
  if gate.cap > 0 then redis.call('ZADD', gate.busy, 'XX', 'GT', expires, ARGV[3]) end
end
return report(1)
