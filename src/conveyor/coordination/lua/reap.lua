-- reap: forget a dead worker, fenced by the leader epoch. Its queued items go back to their
-- tenants' queues here; its active items are returned for the store to decide (timeout, retry).
--
-- KEYS[1]       scheduler:epoch (missing counts as epoch 0)
-- KEYS[2]       workers (registry index)
-- KEYS[3]       worker:{id} (registry hash)
-- KEYS[4]       worker:{id}:queue
-- KEYS[5]       worker:{id}:active
-- KEYS[6..14]   the fair block (fair.lua)
-- KEYS[15]      wake (list holding at most one token for the dispatcher)
-- KEYS[16]      queued (set of every priority-queue member)
-- ARGV[1]       the caller's epoch
-- ARGV[2]       the worker id
-- Returns       {queued items, active items}; error reply "STALE_EPOCH <current>" if ARGV[1]
--               is not the current epoch, and then nothing changes.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE_EPOCH ' .. tostring(current))
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
local queued = redis.call('LRANGE', KEYS[4], 0, -1)
fair(6, KEYS[16]):push_all(queued, KEYS[15])
local active = redis.call('LRANGE', KEYS[5], 0, -1)
redis.call('DEL', KEYS[4], KEYS[5])
return {queued, active}
