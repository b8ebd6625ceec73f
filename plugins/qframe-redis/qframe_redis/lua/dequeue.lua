-- KEYS: ready, leased, delayed, msg, attempts, released   ARGV: count, lease_ms
-- Returns {0, id1, token1, attempts1, payload1, malformed1, ...} when it leased messages
-- (malformed: why the entry is not one enqueue wrote, '' for a good one), else
-- {ms until a delayed message is due or a lease runs out (-1: nothing pending)}.
local now = now_ms()
-- Due delayed messages join the back of the line, earliest first.
local due = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 1000)
if #due > 0 then
  redis.call('ZREM', KEYS[3], unpack(due))
  redis.call('LPUSH', KEYS[1], unpack(due))
end
-- Expired leases go back to the front of the line, longest expired first.
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, 1000)
if #expired > 0 then
  redis.call('ZREM', KEYS[2], unpack(expired))
  for i = #expired, 1, -1 do redis.call('RPUSH', KEYS[1], expired[i]) end
end
-- An entry enqueue never wrote (no id, or an id whose payload is nowhere) is leased and
-- returned like the others with a reason, for the core to move it to the dead letters.
local function fresh_id(entry, position)
  local id = string.sub(redis.sha1hex(now .. ':' .. position .. ':' .. entry), 1, ID_LENGTH)
  while redis.call('HEXISTS', KEYS[4], id) == 1 or redis.call('HEXISTS', KEYS[5], id) == 1 do
    id = string.sub(redis.sha1hex(id), 1, ID_LENGTH)
  end
  return id
end
local out = {0}
local entries = redis.call('RPOP', KEYS[1], tonumber(ARGV[1]))
if entries then
  local deadline = now + tonumber(ARGV[2])
  local any_released = redis.call('EXISTS', KEYS[6]) == 1  -- usually not: one call instead of one per entry
  for position, entry in ipairs(entries) do
    local id, payload, malformed = string.sub(entry, 1, ID_LENGTH), nil, ''
    if #entry < ID_LENGTH then
      malformed = 'ready-list entry of ' .. #entry .. ' bytes is too short to hold a message id'
    elseif not string.match(id, '^%x+$') then
      malformed = 'ready-list entry does not begin with a message id (32 hex digits)'
    end
    if malformed ~= '' then
      id, payload = fresh_id(entry, position), entry
      redis.call('HSET', KEYS[4], id, payload)
    elseif #entry > ID_LENGTH then
      payload = string.sub(entry, ID_LENGTH + 1)
      redis.call('HSET', KEYS[4], id, payload)
    else
      payload = redis.call('HGET', KEYS[4], id)
      if not payload then payload, malformed = '', 'message id with no payload' end
    end
    local token = redis.call('HINCRBY', KEYS[5], id, 1)
    local released = any_released and tonumber(redis.call('HGET', KEYS[6], id) or '0') or 0
    redis.call('ZADD', KEYS[2], deadline, id)
    out[#out + 1] = id
    out[#out + 1] = token
    out[#out + 1] = token - released
    out[#out + 1] = payload
    out[#out + 1] = malformed
  end
end
if #out > 1 then return out end
local nxt = -1
for _, key in ipairs({KEYS[2], KEYS[3]}) do
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if #first > 0 then
    local at = tonumber(first[2])
    if nxt < 0 or at < nxt then nxt = at end
  end
end
if nxt >= 0 then nxt = math.max(nxt - now, 1) end
return {nxt}
