-- remove: drop items from their queues and from the delayed set (cancel, priority change).
--
-- KEYS[1..9]  the fair block (fair.lua)
-- KEYS[10]    queued (set of every priority-queue member)
-- KEYS[11]    delayed
-- ARGV[1..]   encoded items
-- Returns     how many were found in a queue
local queues = fair(1, KEYS[10])
local removed = 0
for _, member in ipairs(ARGV) do
  if queues:pop(member) then
    removed = removed + 1
  end
  redis.call('ZREM', KEYS[11], member)
end
return removed
