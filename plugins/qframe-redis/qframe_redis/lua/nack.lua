-- KEYS: leased, attempts, ready, notify   ARGV: id1, token1, ...
local done = 0
for i = 1, #ARGV, 2 do
  local id = ARGV[i]
  if held(KEYS[1], KEYS[2], id, ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('RPUSH', KEYS[3], id)
    redis.call('LPUSH', KEYS[4], '1')
    done = done + 1
  end
end
if done > 0 then
  redis.call('LTRIM', KEYS[4], 0, 63)
  redis.call('PEXPIRE', KEYS[4], 5000)
end
return done
