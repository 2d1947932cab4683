-- peek: the first N items of one priority in dispatch order, left in place (read only but
-- for joining a default-tenant list queued before the ring existed to the ring).
--
-- KEYS[1..9]  the fair block (fair.lua)
-- ARGV[1]     the priority (0 low, 1 normal, 2 high)
-- ARGV[2]     N (> 0)
-- ARGV[3]     how many (tenant, weight) pairs follow; then the pairs (a tenant absent: 1)
-- Returns     up to N encoded items: from the ring's head (the rest of its turn), each tenant
--             up to its weight, round after round, exactly as coordination/fair.py peeks
--
-- Reads at most N tenants of the ring and N items in all (LRANGE from an offset of at most N),
-- so the cost follows N, not the backlog.
local queues = fair(1, nil)
local p = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local weights = read_weights(3)
local ring = queues:ring(p)
if redis.call('LLEN', queues:list(p, '')) > 0 and not redis.call('LPOS', ring, '') then
  redis.call('RPUSH', ring, '')
end
local tenants = redis.call('LRANGE', ring, 0, count - 1)
local used = tonumber(redis.call('GET', queues:used(p)) or '0')
local offsets, out, live, first = {}, {}, #tenants, true
while #out < count and live > 0 do
  for i, tenant in ipairs(tenants) do
    if offsets[i] ~= false and #out < count then
      local quota = math.max(1, weights[tenant] or 1)
      if first and i == 1 then
        quota = quota - used
      end
      local want = math.min(quota, count - #out)
      if want > 0 then
        local offset = offsets[i] or 0
        local got = redis.call('LRANGE', queues:list(p, tenant), offset, offset + want - 1)
        for _, member in ipairs(got) do
          out[#out + 1] = member
        end
        if #got < want then
          offsets[i] = false
          live = live - 1
        else
          offsets[i] = offset + #got
        end
      end
    end
  end
  first = false
end
return out
