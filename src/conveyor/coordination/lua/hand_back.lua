-- hand_back: return everything a worker has not taken yet to the tail of its tenants' queues.
--
-- KEYS[1]      worker:{id}:queue
-- KEYS[2..10]  the fair block (fair.lua)
-- KEYS[11]     wake (list holding at most one token for the dispatcher)
-- KEYS[12]     queued (set of every priority-queue member)
-- Returns      the items moved, in worker-queue order
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
fair(2, KEYS[12]):push_all(items, KEYS[11])
return items
