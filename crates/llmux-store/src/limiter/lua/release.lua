-- Frees a concurrency slot. KEYS[1]: the counter. A counter that expired while its requests
-- ran would go negative here: delete it instead.
if redis.call('DECR', KEYS[1]) <= 0 then
  redis.call('DEL', KEYS[1])
end
return 0
