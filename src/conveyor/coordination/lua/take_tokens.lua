-- take_tokens: a token bucket per task type and tenant (the dispatcher's rate limit:
-- ``type``, or ``type@tenant`` outside the default tenant) or per tenant
-- (``@tenant:<name>``, the create quota).
--
-- KEYS[1]  ratelimit:{type} (hash: tokens, ts)
-- ARGV[1]  rate, tokens per second (the bucket holds at most max(1, rate): a one-second burst)
-- ARGV[2]  tokens wanted
-- ARGV[3]  now, epoch seconds (the leader's clock for types; the API's for tenant quotas)
-- ARGV[4]  1: all wanted or none (a create quota admits a batch whole); absent or 0: up to
-- Returns  tokens granted (0..wanted)
local rate = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local burst = math.max(1, rate)
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local last = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local granted = math.min(wanted, math.floor(tokens))
if ARGV[4] == '1' and granted < wanted then
  granted = 0
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - granted), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 60000)
return granted
