-- ARGV: P, save_limit, ttl_ms, then 11 fields per result:
--   id, blob, name, func, group ('' for none, else '=' .. name), success ('1'/'0'),
--   started, stopped, attempts, cluster, busy seconds
prune()
local limit = tonumber(ARGV[2])
local ttl = tonumber(ARGV[3])
local expires = 0
if ttl > 0 then expires = now_ms() + ttl end
for i = 4, #ARGV, 11 do
  local id, group, success, stopped = ARGV[i], ARGV[i + 4], ARGV[i + 5] == '1', ARGV[i + 7]
  local key = P .. 'r:' .. id
  -- The first success is final: a saved success is never replaced; a success that is
  -- not kept (save_limit < 0) leaves the saved record as it is.
  if redis.call('HGET', key, 'success') ~= '1' and not (success and limit < 0) then
    drop(id)
    redis.call('HSET', key, 'blob', ARGV[i + 1], 'name', ARGV[i + 2], 'func', ARGV[i + 3],
      'group', group, 'success', ARGV[i + 5], 'started', ARGV[i + 6], 'stopped', stopped,
      'attempts', ARGV[i + 8], 'cluster', ARGV[i + 9])
    if ttl > 0 then
      redis.call('PEXPIRE', key, ttl)
      redis.call('ZADD', EXP, expires, id)
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
-- save_limit N > 0: keep the N most recent successes (at most 1000 trimmed per call).
if limit > 0 then
  local extra = redis.call('ZCARD', OK) - limit
  if extra > 0 then
    local victims = redis.call('ZRANGE', OK, 0, math.min(extra, 1000) - 1)
    for _, id in ipairs(victims) do drop(id) end
  end
end
return 1
