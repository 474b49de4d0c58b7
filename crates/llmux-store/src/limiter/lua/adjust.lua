-- GCRA correction; a line-by-line translation of `adjust` in gcra.rs (keep them in step).
-- KEYS[1]: the stored TAT, integer microseconds. ARGV: limit per minute, delta units, now in ms.
local limit = tonumber(ARGV[1])
local delta = tonumber(ARGV[2])
local now = tonumber(ARGV[3]) * 1000
if limit == 0 or delta == 0 then
  return 0
end
local t = math.floor(60000000 / limit)
if t < 1 then
  t = 1
end
local stored = tonumber(redis.call('GET', KEYS[1]))
local new_tat
if delta > 0 then
  new_tat = stored or now
  if new_tat < now then
    new_tat = now
  end
  new_tat = new_tat + delta * t
else
  if not stored then
    return 0
  end
  new_tat = stored + delta * t
end
if new_tat <= now then
  redis.call('DEL', KEYS[1])
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 1
