-- tracked: which task ids sit anywhere in Redis, read in one atomic pass so that an item moving
-- between two places cannot be missed (the orphan sweep re-enqueues what is not tracked).
--
-- KEYS[1..3]  queue:low, queue:normal, queue:high
-- KEYS[4]     delayed
-- KEYS[5]     workers (registry index); each indexed worker's queue and active list are read,
--             their names built from ARGV[1..3] because they are only known at run time
-- ARGV[1]     the worker key prefix ("<prefix>worker:")
-- ARGV[2]     the worker queue suffix (":queue")
-- ARGV[3]     the active list suffix (":active")
-- ARGV[4..]   the task ids asked about
-- Returns     the ids found, each once, in no particular order
--
-- It reads every list in full: meant for a periodic sweep, not the hot path.
local wanted = {}
for i = 4, #ARGV do
  wanted[ARGV[i]] = true
end
local found = {}
local function scan(members)
  for _, member in ipairs(members) do
    local task_id = string.match(member, '^([^|]*)')
    if wanted[task_id] then
      found[task_id] = true
    end
  end
end
for i = 1, 3 do
  scan(redis.call('LRANGE', KEYS[i], 0, -1))
end
scan(redis.call('ZRANGE', KEYS[4], 0, -1))
for _, worker_id in ipairs(redis.call('ZRANGE', KEYS[5], 0, -1)) do
  scan(redis.call('LRANGE', ARGV[1] .. worker_id .. ARGV[2], 0, -1))
  scan(redis.call('LRANGE', ARGV[1] .. worker_id .. ARGV[3], 0, -1))
end
local ids = {}
for task_id in pairs(found) do
  ids[#ids + 1] = task_id
end
return ids
