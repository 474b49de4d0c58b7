-- Whether a key is flagged as revoked. KEYS[1]: the flag.
return redis.call('EXISTS', KEYS[1])
