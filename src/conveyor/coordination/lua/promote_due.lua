-- promote_due: move due items from the delayed set to the tail of their priority queues.
--
-- KEYS[1]     delayed (sorted set, score = due time)
-- KEYS[2..4]  queue:low, queue:normal, queue:high (KEYS[2 + priority])
-- KEYS[5]     wake (list holding at most one token for the dispatcher)
-- KEYS[6]     queued (set of every priority-queue member)
-- ARGV[1]     now (epoch seconds); items with score <= now are due
-- ARGV[2]     limit (> 0): at most this many move, earliest due first
-- Returns     how many items moved
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local priority = tonumber(string.match(member, '|(%d+)$'))
  redis.call('ZREM', KEYS[1], member)
  redis.call('RPUSH', KEYS[2 + priority], member)
  redis.call('SADD', KEYS[6], member)
end
if #due > 0 then
  redis.call('LPUSH', KEYS[5], '1')
  redis.call('LTRIM', KEYS[5], 0, 0)
end
return #due
