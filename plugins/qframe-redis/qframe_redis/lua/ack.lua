-- KEYS: leased, msg, attempts, released   ARGV: id1, token1, id2, token2, ...
local done = 0
local any_released = redis.call('EXISTS', KEYS[4]) == 1  -- usually not: one call instead of one per id
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  -- held(), in two calls instead of three: the token first, then the lease (ZREM says whether it was there)
  if redis.call('HGET', KEYS[3], id) == ARGV[i + 1] and redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    if any_released then redis.call('HDEL', KEYS[4], id) end
    done = done + 1
  end
end
return done
