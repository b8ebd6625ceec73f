-- ARGV: P, action ('get' | 'count' | 'delete'), group, failures ('1'/'0')
prune()
local action, g = ARGV[2], ARGV[3]
local all = P .. 'group:' .. g
local index = all
if ARGV[4] ~= '1' then index = P .. 'groupok:' .. g end
if action == 'count' then return redis.call('ZCARD', index) end
local ids = redis.call('ZRANGE', index, 0, -1)
if action == 'delete' then
  for _, id in ipairs(ids) do drop(id) end
  return #ids
end
local blobs = {}
for _, id in ipairs(ids) do
  local blob = redis.call('HGET', P .. 'r:' .. id, 'blob')
  if blob then blobs[#blobs + 1] = blob end
end
return blobs
