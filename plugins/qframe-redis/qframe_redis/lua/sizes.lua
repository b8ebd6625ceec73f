-- KEYS: ready, leased, delayed   Returns {waiting, leased now}; expired leases count as waiting.
local now = now_ms()
local live = redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf')
local waiting = redis.call('LLEN', KEYS[1]) + redis.call('ZCARD', KEYS[3]) + redis.call('ZCARD', KEYS[2]) - live
return {waiting, live}
