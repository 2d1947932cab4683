-- promote_due: move due items from the delayed set to the tail of their tenants' queues.
--
-- KEYS[1]      delayed (sorted set, score = due time)
-- KEYS[2..10]  the fair block (fair.lua)
-- KEYS[11]     wake (list holding at most one token for the dispatcher)
-- KEYS[12]     queued (set of every priority-queue member)
-- ARGV[1]      now (epoch seconds); items with score <= now are due
-- ARGV[2]      limit (> 0): at most this many move, earliest due first
-- Returns      how many items moved
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  redis.call('ZREM', KEYS[1], member)
end
fair(2, KEYS[12]):push_all(due, KEYS[11])
return #due
