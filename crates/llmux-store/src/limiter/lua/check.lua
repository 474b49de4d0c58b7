-- GCRA check; a line-by-line translation of `check` in gcra.rs (keep them in step).
-- KEYS[1]: the stored TAT, integer microseconds. ARGV: limit per minute, cost, now in ms.
-- Returns {allowed (0/1), remaining, reset_after_us, retry_after_us or -1 for none}.
local limit = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local now = tonumber(ARGV[3]) * 1000
if limit == 0 then
  return {0, 0, 0, -1}
end
local t = math.floor(60000000 / limit)
if t < 1 then
  t = 1
end
local tau = (limit - 1) * t
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then
  tat = now
end
local new_tat = tat + cost * t
local allow_at = new_tat - t - tau

local function remaining(stored)
  local r = math.floor((now + tau + t - stored) / t)
  if r < 0 then
    r = 0
  end
  return r
end

if allow_at <= now then
  if new_tat > now then
    -- Integers print exactly with %.0f; tostring would switch to exponent notation.
    redis.call('SET', KEYS[1], string.format('%.0f', new_tat),
      'PX', math.ceil((new_tat - now) / 1000))
  end
  return {1, remaining(new_tat), new_tat - now, -1}
end
local retry = -1
if cost <= limit then
  retry = allow_at - now
end
return {0, remaining(tat), tat - now, retry}
