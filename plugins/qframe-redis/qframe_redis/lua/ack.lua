-- KEYS: leased, msg, attempts, released   ARGV: id1, token1, id2, token2, ...
local done = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if held(KEYS[1], KEYS[3], id, ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
    redis.call('HDEL', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    done = done + 1
  end
end
return done
