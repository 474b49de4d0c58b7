-- Takes a concurrency slot. KEYS[1]: the counter. ARGV: max slots, safety TTL in seconds.
-- The TTL is renewed on every acquire, so a replica that crashed holding slots leaks them
-- only until the key has been idle that long.
local n = tonumber(redis.call('GET', KEYS[1])) or 0
if n >= tonumber(ARGV[1]) then
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
