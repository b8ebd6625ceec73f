-- Delayed messages only (others are one LPUSH from the client).
-- KEYS: delayed, msg   ARGV: delay_ms, id1, payload1, id2, payload2, ...
local due = now_ms() + tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[1], due, ARGV[i])
end
return (#ARGV - 1) / 2
