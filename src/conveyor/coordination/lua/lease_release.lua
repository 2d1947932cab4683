-- lease_release: give the scheduler lease up, only if the caller still holds it.
--
-- KEYS[1]  scheduler:leader
-- ARGV[1]  the lease value the caller holds ("holder|epoch")
-- Returns  1 if released, 0 if the caller did not hold it
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
