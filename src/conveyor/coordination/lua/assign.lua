-- assign: move items from their priority queues into worker queues, fenced by the leader epoch.
--
-- KEYS[1]     scheduler:epoch (missing counts as epoch 0, like the in-process backend)
-- KEYS[2..4]  queue:low, queue:normal, queue:high (KEYS[2 + priority])
-- KEYS[5]     queued (set of every priority-queue member)
-- KEYS[6..]   worker:{id}:queue, one per move, in the order of ARGV[3..]
-- ARGV[1]     the caller's epoch
-- ARGV[2]     how deep the items were peeked: each is looked for only that far from the head
--             of its queue (0: the whole queue)
-- ARGV[3..]   encoded QueueItem ("task_id|task_type|priority"), one per move
-- Returns     how many items moved; an item no longer in its queue (cancelled or taken
--             meanwhile) is skipped. Error reply "STALE_EPOCH <current>" if ARGV[1] is not
--             the current epoch, and then nothing moves.
--
-- Items only move towards the head of a queue (pushes go to the tail), so one peeked within
-- ARGV[2] is still there or gone: LPOS with MAXLEN bounds the search, and a gone item costs
-- that window rather than the whole queue's length; LREM then stops at the first match.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE_EPOCH ' .. tostring(current))
end
local within = tonumber(ARGV[2])
local moved = 0
for i = 3, #ARGV do
  local member = ARGV[i]
  local queue = KEYS[2 + tonumber(string.match(member, '|(%d+)$'))]
  if redis.call('LPOS', queue, member, 'MAXLEN', within) and
      redis.call('LREM', queue, 1, member) > 0 then
    redis.call('SREM', KEYS[5], member)
    redis.call('RPUSH', KEYS[3 + i], member)
    moved = moved + 1
  end
end
return moved
