-- peek: the first N items of one priority in dispatch order, left in place (read only but
-- for joining a default-tenant list queued before the ring existed to the ring).
--
-- KEYS[1..9]  the fair block (fair.lua)
-- ARGV[1]     the priority (0 low, 1 normal, 2 high)
-- ARGV[2]     N (> 0)
-- ARGV[3]     how many (tenant, weight) pairs follow; then the pairs (a tenant absent: 1)
-- Returns     up to N encoded items in dispatch order (Fair:peek)
return fair(1, nil):peek(tonumber(ARGV[1]), tonumber(ARGV[2]), read_weights(3))
