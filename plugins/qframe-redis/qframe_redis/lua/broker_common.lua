-- Shared by the broker scripts: the server clock and the claim check.
-- Key layout (all keys of one queue share the hash tag {queue}):
--   ready    list   entries waiting, consumed from the right (FIFO). A fresh entry is the
--                   32-character message id followed by its payload (enqueue is one LPUSH);
--                   a returned one is the bare id, its payload already in msg.
--   leased   zset   message id -> lease deadline (ms, server clock)
--   delayed  zset   message id -> due time (ms, server clock)
--   msg      hash   message id -> payload
--   attempts hash   message id -> deliveries so far; the current delivery's claim token
--   released hash   message id -> deliveries handed back unstarted (not counted as attempts)
local ID_LENGTH = 32

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- True when delivery `token` of message `id` still holds its lease.
local function held(leased, attempts, id, token)
  return redis.call('ZSCORE', leased, id) ~= false and redis.call('HGET', attempts, id) == token
end
