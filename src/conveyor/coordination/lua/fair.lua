-- fair.lua: the fair queue layout, prepended to every script that pushes to or pops from the
-- priority queues (see coordination/fair.py for the rules and backend.load_scripts for how).
--
-- A block of nine keys, passed by the caller from keys.Keys.fair:
--   first + 0..2  queue:low, queue:normal, queue:high: the default tenant's list of each
--                 priority, and the base name of the others' ("queue:high:<tenant>")
--   first + 3..5  ring:low, ring:normal, ring:high: the tenants with work, head = whose turn
--   first + 6..8  ring:low:used ...: how many items the head took of its current turn
-- plus the ``queued`` index, which every push and pop keeps in step with the lists.
--
-- Members are "task_id|task_type|priority" (default tenant) or "...|priority|tenant", and a
-- member pinned to a worker ends in "|tenant|worker" (tenant empty for the default); inside
-- the ring the default tenant is the empty string. Invariant: a tenant is in a ring exactly
-- when its list in that priority is not empty (lists queued before the ring existed are
-- joined by ``peek``).
local Fair = {}
Fair.__index = Fair

local function fair(first, queued)
  return setmetatable({first = first, queued = queued}, Fair)
end

local function parse(member)
  local p, tenant = string.match(member, '^[^|]*|[^|]*|(%d+)|?([^|]*)')
  return tonumber(p), tenant
end

function Fair:list(p, tenant)
  local base = KEYS[self.first + p]
  if tenant == '' then
    return base
  end
  return base .. ':' .. tenant
end

function Fair:ring(p)
  return KEYS[self.first + 3 + p]
end

function Fair:used(p)
  return KEYS[self.first + 6 + p]
end

-- Append a member to its tenant's list; a tenant whose list was empty joins the ring's tail.
function Fair:push(member)
  local p, tenant = parse(member)
  if redis.call('RPUSH', self:list(p, tenant), member) == 1 then
    redis.call('RPUSH', self:ring(p), tenant)
  end
  redis.call('SADD', self.queued, member)
end

-- One item of ``tenant`` was dispatched, in ring order: tenants ahead of it were passed over
-- and go to the tail; its turn ends after ``weight`` items.
function Fair:took(p, tenant, weight)
  local ring, used = self:ring(p), self:used(p)
  local ahead = redis.call('LPOS', ring, tenant)
  if not ahead then
    return
  end
  if ahead > 0 then
    for _ = 1, ahead do
      redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    end
    redis.call('DEL', used)
  end
  if redis.call('INCR', used) >= weight then
    redis.call('LMOVE', ring, ring, 'LEFT', 'RIGHT')
    redis.call('DEL', used)
  end
end

-- Remove one copy of a member (looked for only ``within`` deep when given, 0 = everywhere);
-- with ``weights`` it counts as dispatched and advances the ring. True if it was there.
function Fair:pop(member, within, weights)
  local p, tenant = parse(member)
  local list = self:list(p, tenant)
  if within and not redis.call('LPOS', list, member, 'MAXLEN', within) then
    return false
  end
  if redis.call('LREM', list, 1, member) == 0 then
    return false
  end
  if weights then
    self:took(p, tenant, math.max(1, weights[tenant] or 1))
  end
  redis.call('SREM', self.queued, member)
  if redis.call('EXISTS', list) == 0 then
    local ring = self:ring(p)
    if redis.call('LINDEX', ring, 0) == tenant then
      redis.call('DEL', self:used(p))
    end
    redis.call('LREM', ring, 1, tenant)
  end
  return true
end

-- The first ``count`` members of priority ``p`` in dispatch order, left in place (a default
-- tenant list queued before the ring existed joins the ring): from the ring's head (the rest
-- of its turn), each tenant up to its weight, round after round, as coordination/fair.py
-- peeks. Reads at most ``count`` tenants of the ring and ``count`` items in all (LRANGE from
-- an offset of at most ``count``), so the cost follows ``count``, not the backlog.
function Fair:peek(p, count, weights)
  local ring = self:ring(p)
  if redis.call('LLEN', self:list(p, '')) > 0 and not redis.call('LPOS', ring, '') then
    redis.call('RPUSH', ring, '')
  end
  local tenants = redis.call('LRANGE', ring, 0, count - 1)
  local used = tonumber(redis.call('GET', self:used(p)) or '0')
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
          local got = redis.call('LRANGE', self:list(p, tenant), offset, offset + want - 1)
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
end

-- ARGV[from] = how many (tenant, weight) pairs follow; returns the map and the next index.
local function read_weights(from)
  local weights = {}
  local pairs_given = tonumber(ARGV[from])
  for i = from + 1, from + 2 * pairs_given, 2 do
    weights[ARGV[i]] = tonumber(ARGV[i + 1])
  end
  return weights, from + 1 + 2 * pairs_given
end

-- Push every member, then leave the one wake token in ``wake_key`` if anything was pushed.
function Fair:push_all(members, wake_key)
  for _, member in ipairs(members) do
    self:push(member)
  end
  if #members > 0 then
    redis.call('LPUSH', wake_key, '1')
    redis.call('LTRIM', wake_key, 0, 0)
  end
end

-- Script body follows.
