-- assign: move items from their tenants' queues into worker queues, fenced by the leader epoch,
-- advancing each priority's ring of tenants as the items leave.
--
-- KEYS[1]      scheduler:epoch (missing counts as epoch 0, like the in-process backend)
-- KEYS[2..10]  the fair block (fair.lua)
-- KEYS[11]     queued (set of every priority-queue member)
-- KEYS[12..]   worker:{id}:queue, one per move, in the order of the items in ARGV
-- ARGV[1]      the caller's epoch
-- ARGV[2]      how deep the items were peeked: each is looked for only that far from the head
--              of its tenant's queue (0: the whole queue)
-- ARGV[3]      how many (tenant, weight) pairs follow; then the pairs (a tenant absent: 1)
-- ARGV[..]     encoded QueueItem, one per move, in peek order within each priority
-- Returns      how many items moved; an item no longer in its queue (cancelled or taken
--              meanwhile) is skipped. Error reply "STALE_EPOCH <current>" if ARGV[1] is not
--              the current epoch, and then nothing moves.
--
-- Items only move towards the head of a queue (pushes go to the tail), and an item peeked N
-- deep in turn order sits at most N deep in its tenant's queue, so one peeked within ARGV[2]
-- is still there or gone: LPOS with MAXLEN bounds the search, and a gone item costs that
-- window rather than the whole queue's length; LREM then stops at the first match.
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current ~= tonumber(ARGV[1]) then
  return redis.error_reply('STALE_EPOCH ' .. tostring(current))
end
local queues = fair(2, KEYS[11])
local within = tonumber(ARGV[2])
local weights, first = read_weights(3)
local moved = 0
for i = first, #ARGV do
  local member = ARGV[i]
  if queues:pop(member, within, weights) then
    redis.call('RPUSH', KEYS[12 + i - first], member)
    moved = moved + 1
  end
end
return moved
