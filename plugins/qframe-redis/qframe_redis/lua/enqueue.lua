-- KEYS: ready, delayed, msg, notify   ARGV: delay_ms, id1, payload1, id2, payload2, ...
local delay = tonumber(ARGV[1])
local due = 0
if delay > 0 then due = now_ms() + delay end
local n = 0
for i = 2, #ARGV, 2 do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  if delay > 0 then
    redis.call('ZADD', KEYS[2], due, ARGV[i])
  else
    redis.call('LPUSH', KEYS[1], ARGV[i])
  end
  n = n + 1
end
-- Wake blocked consumers: one token per message (at most 64, kept for 5 s at most).
for _ = 1, math.min(n, 64) do redis.call('LPUSH', KEYS[4], '1') end
redis.call('LTRIM', KEYS[4], 0, 63)
redis.call('PEXPIRE', KEYS[4], 5000)
return n
