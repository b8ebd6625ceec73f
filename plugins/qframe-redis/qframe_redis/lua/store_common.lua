-- Shared by the store scripts. Every key of a store shares one hash tag ({results}),
-- so KEYS name the fixed index keys and ARGV[1] is the prefix of the per-result keys:
--   KEYS[1] ok      zset  task id -> stopped, successes (save_limit trims the oldest)
--   KEYS[2] fail    zset  task id -> stopped, failures
--   KEYS[3] dur     hash  task id -> stopped - started (seconds), for tally()
--   KEYS[4] grp     hash  task id -> group name
--   KEYS[5] exp     zset  task id -> expiry (ms, server clock) when result_ttl is set
--   KEYS[6] groups  set   names of groups that have results
--   KEYS[7] busy    string  sum of dur over all results (INCRBYFLOAT), for tally()
--   KEYS[8] names   hash  task id -> task name, for the name index
--   KEYS[9] per     hash  task id -> its save_limit_per bucket ('-' no value, '=' .. value)
--   P .. 'r:' .. id           hash  blob and metadata of one result
--   P .. 'group:' .. g        zset  task id -> stopped, the group's results
--   P .. 'groupok:' .. g      zset  task id -> stopped, the group's successes
--   P .. 'name:' .. n         zset  task id -> stopped, the results named n (get_by_name)
--   P .. 'per:' .. b          zset  task id -> stopped, the successes of save_limit_per bucket b
--   P .. 'waiting:' .. id     string someone waits for this result (set by wait())
--   P .. 'done:' .. id        list  the saved blob, for waiters only (expires after 60 s)
--   P .. 'gwaiting:' .. g     string someone waits for results of group g (set by wait_group())
--   P .. 'gevents:' .. g      stream one entry per result saved into g while someone waits
--                                    (MAXLEN 1, expires 60 s after the last entry)
local P = ARGV[1]
local OK, FAIL, DUR, GRP, EXP, GROUPS, BUSY, NAMES, PER =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Remove result `id` and every index entry of it; return 1 when its record existed.
local function drop(id)
  local g = redis.call('HGET', GRP, id)
  if g then
    redis.call('ZREM', P .. 'group:' .. g, id)
    redis.call('ZREM', P .. 'groupok:' .. g, id)
    redis.call('HDEL', GRP, id)
    if redis.call('EXISTS', P .. 'group:' .. g) == 0 then redis.call('SREM', GROUPS, g) end
  end
  local name = redis.call('HGET', NAMES, id)
  if name then
    redis.call('ZREM', P .. 'name:' .. name, id)
    redis.call('HDEL', NAMES, id)
  end
  local bucket = redis.call('HGET', PER, id)
  if bucket then
    redis.call('ZREM', P .. 'per:' .. bucket, id)
    redis.call('HDEL', PER, id)
  end
  redis.call('ZREM', OK, id)
  redis.call('ZREM', FAIL, id)
  redis.call('ZREM', EXP, id)
  local busy = redis.call('HGET', DUR, id)
  if busy then
    redis.call('INCRBYFLOAT', BUSY, '-' .. busy)
    redis.call('HDEL', DUR, id)
  end
  redis.call('DEL', P .. 'done:' .. id)
  return redis.call('DEL', P .. 'r:' .. id)
end

-- Forget results whose expiry (result_ttl or cached=) ran out (their record expired by itself).
local function prune()
  local ids = redis.call('ZRANGEBYSCORE', EXP, '-inf', now_ms(), 'LIMIT', 0, 500)
  for _, id in ipairs(ids) do drop(id) end
end
