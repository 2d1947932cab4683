-- tracked: which of these items sit anywhere in Redis, read in one atomic pass so that an item
-- moving between two places cannot be missed (the orphan sweep re-enqueues what is not tracked).
--
-- KEYS[1]     queued (set of every priority-queue member)
-- KEYS[2]     delayed
-- KEYS[3]     workers (registry index); each indexed worker's queue and active list are read,
--             their names built from ARGV[1..3] because they are only known at run time
-- ARGV[1]     the worker key prefix ("<prefix>worker:")
-- ARGV[2]     the worker queue suffix (":queue")
-- ARGV[3]     the active list suffix (":active")
-- ARGV[4..]   the encoded items asked about ("task_id|task_type|priority")
-- Returns     the task ids found, each once, in no particular order
--
-- Bounded work whatever the backlog: one SISMEMBER and one ZSCORE per item asked about, plus
-- the worker queues and active lists, which hold at most the fleet's slots and prefetch. The
-- priority queues and the delayed set are never scanned.
local wanted = {}
local found = {}
for i = 4, #ARGV do
  local member = ARGV[i]
  local task_id = string.match(member, '^([^|]*)')
  if redis.call('SISMEMBER', KEYS[1], member) == 1 or redis.call('ZSCORE', KEYS[2], member) then
    found[task_id] = true
  else
    wanted[task_id] = true
  end
end
local function scan(members)
  for _, member in ipairs(members) do
    local task_id = string.match(member, '^([^|]*)')
    if wanted[task_id] then
      found[task_id] = true
    end
  end
end
if next(wanted) ~= nil then
  for _, worker_id in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
    scan(redis.call('LRANGE', ARGV[1] .. worker_id .. ARGV[2], 0, -1))
    scan(redis.call('LRANGE', ARGV[1] .. worker_id .. ARGV[3], 0, -1))
  end
end
local ids = {}
for task_id in pairs(found) do
  ids[#ids + 1] = task_id
end
return ids
