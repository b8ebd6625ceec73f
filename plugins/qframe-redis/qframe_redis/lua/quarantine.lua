-- KEYS: leased, msg, attempts, dead, dead_payload, released   ARGV: id, token, letter fields (JSON)
local id = ARGV[1]
if not held(KEYS[1], KEYS[3], id, ARGV[2]) then return 0 end
local payload = redis.call('HGET', KEYS[2], id)
redis.call('ZREM', KEYS[1], id)
redis.call('HDEL', KEYS[2], id)
redis.call('HDEL', KEYS[3], id)
redis.call('HDEL', KEYS[6], id)
-- A malformed entry may have no payload at all: it is kept as a dead letter all the same.
redis.call('HSET', KEYS[4], id, ARGV[3])
redis.call('HSET', KEYS[5], id, payload or '')
return 1
