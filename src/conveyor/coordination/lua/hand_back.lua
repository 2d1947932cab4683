-- hand_back: return everything a worker has not taken yet to the tail of its tenants' queues.
--
-- KEYS[1]      worker:{id}:queue
-- KEYS[2..10]  the fair block (fair.lua)
-- KEYS[11]     wake (list holding at most one token for the dispatcher)
-- KEYS[12]     queued (set of every priority-queue member)
-- Returns      the items moved, in worker-queue order
local queues = fair(2, KEYS[12])
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
for _, member in ipairs(items) do
  queues:push(member)
end
if #items > 0 then
  wake(KEYS[11])
end
return items
