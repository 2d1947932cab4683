-- ack: drop finished items from a worker's active list, then leave the wake token if anything
-- waits in the priority queues (capacity was freed: the dispatcher may place it). With the
-- queues empty there is nothing to place, and the next enqueue leaves the token itself: an
-- idle system's every finish would otherwise cost the dispatcher a pass that finds nothing,
-- and a task submitted during that pass waits for it. One round trip for a whole batch.
--
-- KEYS[1]  worker:{id}:active
-- KEYS[2]  the wake list (one token at most)
-- KEYS[3]  queued (set of every priority-queue member)
-- ARGV     the items, encoded, one each (an id acked twice is removed twice, once an item)
-- Returns  how many items were removed
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('LREM', KEYS[1], 1, ARGV[i])
end
if redis.call('SCARD', KEYS[3]) > 0 then
  redis.call('LPUSH', KEYS[2], '1')
  redis.call('LTRIM', KEYS[2], 0, 0)
end
return removed
