-- assign: move items from their priority queues into worker queues, fenced by the leader epoch.
--
-- KEYS[1]     scheduler:epoch (missing counts as epoch 0, like the in-process backend)
-- KEYS[2..4]  queue:low, queue:normal, queue:high (KEYS[2 + priority])
-- KEYS[5]     queued (set of every priority-queue member)
-- KEYS[6..]   worker:{id}:queue, one per move, in the order of ARGV[2..]
-- ARGV[1]     the caller's epoch
-- ARGV[2..]   encoded QueueItem ("task_id|task_type|priority"), one per move
-- Returns     how many items moved; an item no longer in its queue (cancelled or taken
--             meanwhile) is skipped. Error reply "STALE_EPOCH <current>" if ARGV[1] is not
--             the current epoch, and then nothing moves.
--
-- LREM count 1 stops at the first match: assigned items were peeked from the head, so this
-- costs their position in the queue rather than the whole queue's length.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE_EPOCH ' .. tostring(current))
end
local moved = 0
for i = 2, #ARGV do
  local member = ARGV[i]
  local priority = tonumber(string.match(member, '|(%d+)$'))
  if redis.call('LREM', KEYS[2 + priority], 1, member) > 0 then
    redis.call('SREM', KEYS[5], member)
    redis.call('RPUSH', KEYS[4 + i], member)
    moved = moved + 1
  end
end
return moved
