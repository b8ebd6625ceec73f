-- KEYS: leased, attempts   ARGV: lease_ms, id1, token1, ...
local deadline = now_ms() + tonumber(ARGV[1])
local done = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if held(KEYS[1], KEYS[2], id, ARGV[i + 1]) then
    redis.call('ZADD', KEYS[1], 'XX', deadline, id)
    done = done + 1
  end
end
return done
