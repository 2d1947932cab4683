-- lease_acquire: take the scheduler lease if nobody holds it, with a new, higher epoch.
--
-- KEYS[1]  scheduler:leader (string "holder|epoch" with a TTL)
-- KEYS[2]  scheduler:epoch (counter)
-- ARGV[1]  the holder id
-- ARGV[2]  the lease TTL in milliseconds
-- Returns  the new epoch, or nil if the lease is held
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. tostring(epoch), 'PX', ARGV[2])
return epoch
