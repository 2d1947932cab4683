-- heads: the paused names and the heads of the unpaused priorities, in one read for the
-- dispatcher's pass (coordination/heads.py does the same with ``paused`` and ``peek``).
--
-- KEYS[1..9]  the fair block (fair.lua)
-- KEYS[10]    paused (set of paused priority labels and task types)
-- ARGV[1]     N (> 0), how deep each priority is read
-- ARGV[2]     1: read every unpaused priority; 0 (strict order): a lower priority only while
--             the items read so far, those of paused types aside, number fewer than N
-- ARGV[3]     how many (tenant, weight) pairs follow; then the pairs (a tenant absent: 1)
-- Returns     {paused names, high items, normal items, low items}, a priority paused or not
--             read being empty; each priority's items in dispatch order (Fair:peek)
local LABELS = {[0] = 'low', [1] = 'normal', [2] = 'high'}
local queues = fair(1, nil)
local count = tonumber(ARGV[1])
local every = ARGV[2] == '1'
local weights = read_weights(3)
local names = redis.call('SMEMBERS', KEYS[10])
local paused = {}
for _, name in ipairs(names) do
  paused[name] = true
end
local out, candidates = {names}, 0
for p = 2, 0, -1 do
  local items = {}
  if not paused[LABELS[p]] and (every or candidates < count) then
    items = queues:peek(p, count, weights)
    for _, member in ipairs(items) do
      if not paused[string.match(member, '^[^|]*|([^|]*)')] then
        candidates = candidates + 1
      end
    end
  end
  out[#out + 1] = items
end
return out
