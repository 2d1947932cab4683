-- lease_renew: extend the scheduler lease, only if the caller still holds it.
--
-- KEYS[1]  scheduler:leader
-- ARGV[1]  the lease value the caller holds ("holder|epoch")
-- ARGV[2]  the new TTL in milliseconds
-- Returns  1 if renewed, 0 if the lease expired or another holder has it
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
