-- ARGV: P, save_limit, ttl_ms (result_ttl, 0: none), per ('1' when save_limit_per is set, else ''),
-- then 13 fields per result:
--   id, blob, name, func, group ('' for none, else '=' .. name), success ('1'/'0'),
--   started, stopped, attempts, cluster, busy seconds,
--   own ttl_ms (cached=; 0: none, else it replaces result_ttl),
--   save_limit_per bucket ('-' for no value, else '=' .. value; ignored unless per is '1')
prune()
local limit = tonumber(ARGV[2])
local now = now_ms()
local by_bucket = ARGV[4] == '1'
for i = 5, #ARGV, 13 do
  local id, group, success, stopped = ARGV[i], ARGV[i + 4], ARGV[i + 5] == '1', ARGV[i + 7]
  local own, bucket = tonumber(ARGV[i + 11]), ARGV[i + 12]
  local ttl = own
  if own == 0 then ttl = tonumber(ARGV[3]) end
  local key = P .. 'r:' .. id
  -- The first success is final: a saved success is never replaced; a success that is
  -- not kept (save_limit < 0, unless it expires by itself) leaves the saved record as it is.
  local unkept = success and limit < 0 and own == 0
  local saved = redis.call('HGET', key, 'success')
  -- Every saved result has its name in NAMES until drop(): a fresh id (the common case)
  -- has nothing to drop, and skips drop's dozen calls.
  if saved ~= '1' and not unkept and (saved or redis.call('HEXISTS', NAMES, id) == 1) then
    drop(id)
  end
  -- own = -1: the result expired before it reached the store; it replaces a failure with nothing.
  if saved ~= '1' and not unkept and own ~= -1 then
    redis.call('HSET', key, 'blob', ARGV[i + 1], 'name', ARGV[i + 2], 'func', ARGV[i + 3],
      'group', group, 'success', ARGV[i + 5], 'started', ARGV[i + 6], 'stopped', stopped,
      'attempts', ARGV[i + 8], 'cluster', ARGV[i + 9])
    if ttl > 0 then
      redis.call('PEXPIRE', key, ttl)
      redis.call('ZADD', EXP, now + ttl, id)
    end
    redis.call('ZADD', P .. 'name:' .. ARGV[i + 2], stopped, id)
    redis.call('HSET', NAMES, id, ARGV[i + 2])
    if success and by_bucket then
      local per = P .. 'per:' .. bucket
      redis.call('ZADD', per, stopped, id)
      redis.call('HSET', PER, id, bucket)
      -- save_limit N > 0 per bucket: keep the bucket's N most recent successes.
      if limit > 0 then
        local extra = redis.call('ZCARD', per) - limit
        if extra > 0 then
          for _, victim in ipairs(redis.call('ZRANGE', per, 0, math.min(extra, 1000) - 1)) do drop(victim) end
        end
      end
    end
    if success then
      redis.call('ZADD', OK, stopped, id)
    else
      redis.call('ZADD', FAIL, stopped, id)
    end
    redis.call('HSET', DUR, id, ARGV[i + 10])
    redis.call('INCRBYFLOAT', BUSY, ARGV[i + 10])
    if #group > 0 then
      local g = string.sub(group, 2)
      redis.call('ZADD', P .. 'group:' .. g, stopped, id)
      if success then redis.call('ZADD', P .. 'groupok:' .. g, stopped, id) end
      redis.call('HSET', GRP, id, g)
      redis.call('SADD', GROUPS, g)
      -- Only when someone waits for the group: a new entry wakes its waiters (XREAD).
      if redis.call('EXISTS', P .. 'gwaiting:' .. g) == 1 then
        local events = P .. 'gevents:' .. g
        redis.call('XADD', events, 'MAXLEN', '1', '*', 'id', id)
        redis.call('EXPIRE', events, 60)
      end
    end
    -- Only when someone waits: the blob itself wakes the waiters (they rotate the list,
    -- so each of them gets it). Nobody waiting, no extra key.
    if redis.call('EXISTS', P .. 'waiting:' .. id) == 1 then
      local done = P .. 'done:' .. id
      redis.call('LPUSH', done, ARGV[i + 1])
      redis.call('LTRIM', done, 0, 0)
      redis.call('EXPIRE', done, 60)
    end
  end
end
-- save_limit N > 0 (without save_limit_per): keep the N most recent successes (at most 1000 trimmed per call).
if limit > 0 and not by_bucket then
  local extra = redis.call('ZCARD', OK) - limit
  if extra > 0 then
    local victims = redis.call('ZRANGE', OK, 0, math.min(extra, 1000) - 1)
    for _, id in ipairs(victims) do drop(id) end
  end
end
return 1
