-- Reads a key's spend. KEYS: day, month and total counters. Returns micros, missing as 0.
return {
  tonumber(redis.call('GET', KEYS[1])) or 0,
  tonumber(redis.call('GET', KEYS[2])) or 0,
  tonumber(redis.call('GET', KEYS[3])) or 0,
}
