-- live: every live worker's hash and load, in one round trip for the dispatcher's pass.
--
-- KEYS[1]  workers (registry index, scored by heartbeat expiry); each worker's hash, queue and
--          active list are named from ARGV[2..4] because they are only known at run time
-- ARGV[1]  now: a worker is live while its score is above it
-- ARGV[2]  the worker key prefix ("<prefix>worker:")
-- ARGV[3]  the worker queue suffix (":queue")
-- ARGV[4]  the active list suffix (":active")
-- Returns  one {hash as field, value, ...; queue length; active list length} per live worker;
--          a worker whose hash is gone comes with an empty hash (the caller skips it)
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf')) do
  local worker = ARGV[2] .. id
  out[#out + 1] = {
    redis.call('HGETALL', worker),
    redis.call('LLEN', worker .. ARGV[3]),
    redis.call('LLEN', worker .. ARGV[4]),
  }
end
return out
