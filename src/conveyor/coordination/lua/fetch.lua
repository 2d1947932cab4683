-- fetch: move up to N items from a worker's queue to its active list (reliable fetch).
--
-- KEYS[1]  worker:{id}:queue
-- KEYS[2]  worker:{id}:active
-- ARGV[1]  N, the most items to take
-- Returns  the items moved, oldest first (empty when the queue is empty)
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
  local member = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
  if not member then
    break
  end
  taken[#taken + 1] = member
end
return taken
