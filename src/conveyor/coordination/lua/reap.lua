-- reap: forget a dead worker, fenced by the leader epoch. Its queued items go back to the
-- priority queues here; its active items are returned for the store to decide (timeout, retry).
--
-- KEYS[1]     scheduler:epoch (missing counts as epoch 0)
-- KEYS[2]     workers (registry index)
-- KEYS[3]     worker:{id} (registry hash)
-- KEYS[4]     worker:{id}:queue
-- KEYS[5]     worker:{id}:active
-- KEYS[6..8]  queue:low, queue:normal, queue:high (KEYS[6 + priority])
-- KEYS[9]     wake (list holding at most one token for the dispatcher)
-- KEYS[10]    queued (set of every priority-queue member)
-- ARGV[1]     the caller's epoch
-- ARGV[2]     the worker id
-- Returns     {queued items, active items}; error reply "STALE_EPOCH <current>" if ARGV[1]
--             is not the current epoch, and then nothing changes.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE_EPOCH ' .. tostring(current))
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', KEYS[3])
local queued = redis.call('LRANGE', KEYS[4], 0, -1)
for _, member in ipairs(queued) do
  local priority = tonumber(string.match(member, '|(%d+)$'))
  redis.call('RPUSH', KEYS[6 + priority], member)
  redis.call('SADD', KEYS[10], member)
end
if #queued > 0 then
  redis.call('LPUSH', KEYS[9], '1')
  redis.call('LTRIM', KEYS[9], 0, 0)
end
local active = redis.call('LRANGE', KEYS[5], 0, -1)
redis.call('DEL', KEYS[4], KEYS[5])
return {queued, active}
