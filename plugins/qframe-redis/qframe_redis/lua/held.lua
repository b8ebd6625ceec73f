-- Held delayed tasks (the DelayStore role). ARGV: P, op, queue, then per op:
--   hold   id, payload, due                      -> 1
--   claim  until, lease_ms, limit, token         -> {id1, payload1, due1, ...}, earliest due first
--   drop   id1, token1, id2, token2, ...         -> how many were deleted
--   count                                        -> held entries of the queue
-- Keys (all in the store's slot):
--   P .. 'held:' .. queue                  zset  entry id -> due (s, producer clock), unclaimed
--   P .. 'heldlease:' .. queue             zset  entry id -> claim expiry (ms, server clock)
--   P .. 'heldentry:' .. queue .. ':' .. id  hash  payload, due, token (of the current claim)
local op, queue = ARGV[2], ARGV[3]
local WAITING, LEASED = P .. 'held:' .. queue, P .. 'heldlease:' .. queue
local function entry(id) return P .. 'heldentry:' .. queue .. ':' .. id end

if op == 'hold' then
  redis.call('HSET', entry(ARGV[4]), 'payload', ARGV[5], 'due', ARGV[6])
  redis.call('ZADD', WAITING, ARGV[6], ARGV[4])
  return 1
elseif op == 'claim' then
  local now = now_ms()
  -- A claim that ran out makes its entries claimable again; a new claim replaces its token.
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', LEASED, '-inf', now, 'LIMIT', 0, 1000)) do
    redis.call('ZREM', LEASED, id)
    local due = redis.call('HGET', entry(id), 'due')
    if due then redis.call('ZADD', WAITING, due, id) end
  end
  local out = {}
  local deadline = now + tonumber(ARGV[5])
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', WAITING, '-inf', ARGV[4], 'LIMIT', 0, tonumber(ARGV[6]))) do
    redis.call('ZREM', WAITING, id)
    local fields = redis.call('HMGET', entry(id), 'payload', 'due')
    if fields[1] then
      redis.call('HSET', entry(id), 'token', ARGV[7])
      redis.call('ZADD', LEASED, deadline, id)
      out[#out + 1] = id
      out[#out + 1] = fields[1]
      out[#out + 1] = fields[2]
    end
  end
  return out
elseif op == 'drop' then
  local n = 0
  for i = 4, #ARGV, 2 do
    local id = ARGV[i]
    if redis.call('HGET', entry(id), 'token') == ARGV[i + 1] then
      redis.call('DEL', entry(id))
      redis.call('ZREM', LEASED, id)
      redis.call('ZREM', WAITING, id)
      n = n + 1
    end
  end
  return n
elseif op == 'count' then
  return redis.call('ZCARD', WAITING) + redis.call('ZCARD', LEASED)
end
return redis.error_reply('unknown held operation ' .. tostring(op))
