-- Adds micro-dollars to a key's spend. KEYS: day, month and total counters (one hash slot).
-- ARGV: micros, day TTL and month TTL in seconds. The total never expires.
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
redis.call('INCRBY', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('INCRBY', KEYS[3], ARGV[1])
return 0
