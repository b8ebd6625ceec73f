-- KEYS: leased, attempts, ready, released   ARGV: uncounted (1 or 0), id1, token1, ...
-- Puts held messages back at the front of the line (waking blocked consumers). With
-- uncounted = 1 the delivery is released: it does not count as an attempt.
local done = 0
for i = 2, #ARGV, 2 do
  local id = ARGV[i]
  if held(KEYS[1], KEYS[2], id, ARGV[i + 1]) then
    redis.call('ZREM', KEYS[1], id)
    redis.call('RPUSH', KEYS[3], id)
    if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[4], id, 1) end
    done = done + 1
  end
end
return done
