-- hand_back: return everything a worker has not taken yet to the tail of the priority queues.
--
-- KEYS[1]     worker:{id}:queue
-- KEYS[2..4]  queue:low, queue:normal, queue:high (KEYS[2 + priority])
-- KEYS[5]     wake (list holding at most one token for the dispatcher)
-- KEYS[6]     queued (set of every priority-queue member)
-- Returns     the items moved, in worker-queue order
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
for _, member in ipairs(items) do
  local priority = tonumber(string.match(member, '|(%d+)$'))
  redis.call('RPUSH', KEYS[2 + priority], member)
  redis.call('SADD', KEYS[6], member)
end
if #items > 0 then
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
end
return items
