-- ARGV: P, since ('-inf' or seconds)   Returns {successes, failures, busy seconds as text}.
prune()
local since = ARGV[2]
local busy = 0
local function add(values)
  for _, v in ipairs(values) do busy = busy + (tonumber(v) or 0) end
end
if since == '-inf' then
  -- O(1): counts and the running sum kept by save and drop
  local ok, failed = redis.call('ZCARD', OK), redis.call('ZCARD', FAIL)
  if ok + failed > 0 then busy = math.max(0, tonumber(redis.call('GET', BUSY) or '0')) end
  return {ok, failed, string.format('%.17g', busy)}
end
local counts = {}
for n, key in ipairs({OK, FAIL}) do
  local ids = redis.call('ZRANGEBYSCORE', key, since, '+inf')
  counts[n] = #ids
  for start = 1, #ids, 1000 do
    add(redis.call('HMGET', DUR, unpack(ids, start, math.min(start + 999, #ids))))
  end
end
return {counts[1], counts[2], string.format('%.17g', busy)}
