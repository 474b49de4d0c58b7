-- Flags a key as revoked. KEYS[1]: the flag. Revocation is final, so the flag never expires.
redis.call('SET', KEYS[1], '1')
return 0
