-- ARGV: P   Drops up to 1000 results per call; returns how many are left.
local n = 0
for _, key in ipairs({OK, FAIL, EXP}) do
  local ids = redis.call('ZRANGE', key, 0, 999 - n)
  for _, id in ipairs(ids) do drop(id) end
  n = n + #ids
  if n >= 1000 then break end
end
local left = redis.call('ZCARD', OK) + redis.call('ZCARD', FAIL) + redis.call('ZCARD', EXP)
if left == 0 then
  for _, g in ipairs(redis.call('SMEMBERS', GROUPS)) do
    redis.call('DEL', P .. 'group:' .. g, P .. 'groupok:' .. g)
  end
  redis.call('DEL', OK, FAIL, DUR, GRP, EXP, GROUPS, BUSY, NAMES, PER)
end
return left
