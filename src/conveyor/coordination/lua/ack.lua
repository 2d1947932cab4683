-- ack: drop finished items from a worker's active list, then leave the wake token (capacity
-- was freed: the dispatcher may place more work). One round trip for a whole batch.
--
-- KEYS[1]  worker:{id}:active
-- KEYS[2]  the wake list (one token at most)
-- ARGV     the items, encoded, one each (an id acked twice is removed twice, once an item)
-- Returns  how many items were removed
local removed = 0
for i = 1, #ARGV do
  removed = removed + redis.call('LREM', KEYS[1], 1, ARGV[i])
end
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, 0)
return removed
