-- ARGV: P, name   The blob of the most recently stopped result named `name`, or nil.
prune()
local index = P .. 'name:' .. ARGV[2]
for _ = 1, 100 do
  local latest = redis.call('ZREVRANGE', index, 0, 0)
  if #latest == 0 then return false end
  local blob = redis.call('HGET', P .. 'r:' .. latest[1], 'blob')
  if blob then return blob end
  drop(latest[1])  -- its record is gone (expired by itself, not yet pruned)
end
return false
