-- Adds micro-dollars (negative: refunds) to a key's spend. KEYS: day, month and total counters
-- (one hash slot). ARGV: micros, day TTL and month TTL in seconds. The total never expires.
-- A counter never goes below zero.
local function add(key, ttl)
  if redis.call('INCRBY', key, ARGV[1]) < 0 then
    redis.call('SET', key, 0)
  end
  if ttl then
    redis.call('EXPIRE', key, ttl)
  end
end
add(KEYS[1], ARGV[2])
add(KEYS[2], ARGV[3])
add(KEYS[3], nil)
return 0
