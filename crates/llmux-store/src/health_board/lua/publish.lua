-- Raises one mark's end time; never lowers it (the latest opening or cooldown wins).
-- KEYS[1]: the board hash. ARGV[1]: the field (`open:<id>` or `cooldown:<id>`), ARGV[2]: ends,
-- Unix ms. The hash expires a little after its last mark, so an idle board leaves nothing.
local ends = tonumber(ARGV[2])
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if ends > current then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
local ttl = redis.call('PTTL', KEYS[1])
local wanted = ends - tonumber(ARGV[3]) + 60000
if ttl < wanted then
  redis.call('PEXPIRE', KEYS[1], wanted)
end
return 0
