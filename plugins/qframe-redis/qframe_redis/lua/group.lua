-- ARGV: P, action ('get' | 'count' | 'delete' | 'ungroup'), group, kind:
--   'ok' (successes), 'fail' (failures; count only) or 'all' (both)
prune()
local action, g, kind = ARGV[2], ARGV[3], ARGV[4]
local all, ok = P .. 'group:' .. g, P .. 'groupok:' .. g
if action == 'count' then
  if kind == 'ok' then return redis.call('ZCARD', ok) end
  if kind == 'fail' then return redis.call('ZCARD', all) - redis.call('ZCARD', ok) end
  return redis.call('ZCARD', all)
end
local index = all
if kind == 'ok' then index = ok end
local ids = redis.call('ZRANGE', index, 0, -1)
if action == 'delete' then
  for _, id in ipairs(ids) do drop(id) end
  return #ids
end
if action == 'ungroup' then
  -- Django Q2's delete_group(tasks=False): the results stay, the group label goes.
  for _, id in ipairs(ids) do
    redis.call('HDEL', GRP, id)
    if redis.call('EXISTS', P .. 'r:' .. id) == 1 then redis.call('HSET', P .. 'r:' .. id, 'group', '') end
  end
  redis.call('DEL', all, ok)
  redis.call('SREM', GROUPS, g)
  return #ids
end
local blobs = {}
for _, id in ipairs(ids) do
  local blob = redis.call('HGET', P .. 'r:' .. id, 'blob')
  if blob then blobs[#blobs + 1] = blob end
end
return blobs
