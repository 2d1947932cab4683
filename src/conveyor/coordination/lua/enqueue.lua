-- enqueue: append items to the tail of their tenant's queue and wake the dispatcher.
--
-- KEYS[1..9]  the fair block (fair.lua)
-- KEYS[10]    queued (set of every priority-queue member)
-- KEYS[11]    wake (list holding at most one token for the dispatcher)
-- ARGV[1..]   encoded items
-- Returns     how many were pushed
fair(1, KEYS[10]):push_all(ARGV, KEYS[11])
return #ARGV
