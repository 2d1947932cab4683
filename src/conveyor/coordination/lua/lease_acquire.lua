-- lease_acquire: take the scheduler lease if nobody holds it, with a new, higher epoch.
--
-- KEYS[1]  scheduler:leader (string "holder|epoch" with a TTL)
-- KEYS[2]  scheduler:epoch (counter)
-- ARGV[1]  the holder id
-- ARGV[2]  the lease TTL in milliseconds
-- ARGV[3]  the lowest epoch that may be handed out minus one (the store's highest epoch), so
--          epochs keep rising after Redis lost its data
-- Returns  the new epoch, or nil if the lease is held
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
local floor = tonumber(ARGV[3] or '0')
if epoch <= floor then
  epoch = floor + 1
  redis.call('SET', KEYS[2], epoch)
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. tostring(epoch), 'PX', ARGV[2])
return epoch
