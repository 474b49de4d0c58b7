-- Reserves micro-dollars against a key's budgets, atomically: refused (0) when any counter has
-- already reached its budget, else added to all three (1). KEYS: day, month and total counters
-- (one hash slot). ARGV: micros, day TTL, month TTL, then the day, month and total budgets in
-- micros (-1: none).
for i = 1, 3 do
  local budget = tonumber(ARGV[3 + i])
  if budget >= 0 and (tonumber(redis.call('GET', KEYS[i])) or 0) >= budget then
    return 0
  end
end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('INCRBY', KEYS[3], ARGV[1])
return 1
