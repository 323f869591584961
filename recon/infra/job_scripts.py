"""Lua scripts that make every job-store state change atomic inside Redis.

Keys are derived inside the scripts from a prefix argument, so the store targets a single Redis
instance (not Redis Cluster). Status values are compared as bare strings.

Every script that moves a job into or out of `queued` also maintains the queued index (a zset
scored by when the job's task was last sent), so the reaper can find jobs whose message was
never published or was lost without scanning every record.
"""

# KEYS: job hash, tenant index (zset), tenant active set, idempotency key or "", queued zset.
# ARGV: job id, max active (-1: unlimited), created_at, idempotency ttl ms, fields JSON object.
# Returns {"duplicate", id} | {"quota", active} | {"created", id}.
CREATE = """
if KEYS[4] ~= '' then
  local existing = redis.call('GET', KEYS[4])
  if existing then
    local job_key = string.gsub(KEYS[1], '[^:]+$', existing)
    if redis.call('EXISTS', job_key) == 1 then return {'duplicate', existing} end
  end
end
local max_active = tonumber(ARGV[2])
local active = redis.call('SCARD', KEYS[3])
if max_active >= 0 and active >= max_active then return {'quota', tostring(active)} end
local values = cjson.decode(ARGV[5])
for name, value in pairs(values) do redis.call('HSET', KEYS[1], name, value) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[4]) end
return {'created', ARGV[1]}
"""

# KEYS: job hash, running zset, queued zset, lease key to refuse under or "".
# ARGV: prefix, job id, allowed statuses JSON list, new status, fields-to-set JSON object,
#       fields-to-delete JSON list, "1" to increment attempts, now, "1" to refuse when a
#       cancel was requested.
# Returns the previous status when applied, or "!<status>" / "!missing" / "!leased" when
# refused. A job entering `queued` has a fresh message, so its re-send backoff starts over.
TRANSITION = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '!missing' end
local allowed = false
for _, s in ipairs(cjson.decode(ARGV[3])) do if s == status then allowed = true end end
if not allowed then return '!' .. status end
if ARGV[9] == '1' and redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  return '!cancel_requested'
end
if KEYS[4] ~= '' and redis.call('EXISTS', KEYS[4]) == 1 then return '!leased' end
local new = ARGV[4]
redis.call('HSET', KEYS[1], 'status', new, 'updated_at', ARGV[8])
for name, value in pairs(cjson.decode(ARGV[5])) do redis.call('HSET', KEYS[1], name, value) end
for _, name in ipairs(cjson.decode(ARGV[6])) do redis.call('HDEL', KEYS[1], name) end
if ARGV[7] == '1' then redis.call('HINCRBY', KEYS[1], 'attempts', 1) end
if new == 'running' then
  redis.call('ZADD', KEYS[2], ARGV[8], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
if new == 'queued' then
  redis.call('ZADD', KEYS[3], ARGV[8], ARGV[2])
  redis.call('HDEL', KEYS[1], 'queued_resends')
else
  redis.call('ZREM', KEYS[3], ARGV[2])
end
if new == 'succeeded' or new == 'failed' or new == 'canceled' then
  local tenant = cjson.decode(redis.call('HGET', KEYS[1], 'tenant'))
  redis.call('SREM', ARGV[1] .. ':tenant:' .. tenant .. ':active', ARGV[2])
end
return status
"""

# KEYS: job hash, running zset. ARGV: job id, now, progress JSON or "".
# Refreshes the heartbeat (and progress) of a running job; returns 1, or 0 when not running.
HEARTBEAT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[2], 'updated_at', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[3]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: job hash, queued zset. ARGV: now, key prefix.
# Queued: canceled at once. Running: flagged for the worker. Returns the resulting status,
# or "!<status>" / "!missing" when the job is already final or unknown.
REQUEST_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '!missing' end
if status == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'canceled', 'cancel_requested', '1',
             'updated_at', ARGV[1], 'finished_at', ARGV[1])
  local tenant = cjson.decode(redis.call('HGET', KEYS[1], 'tenant'))
  local id = cjson.decode(redis.call('HGET', KEYS[1], 'id'))
  redis.call('SREM', ARGV[2] .. ':tenant:' .. tenant .. ':active', id)
  redis.call('ZREM', KEYS[2], id)
  return 'canceled'
end
if status == 'running' then
  redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[1])
  return 'running'
end
return '!' .. status
"""

# KEYS: job hash, running zset, lease key, queued zset. ARGV: prefix, job id.
# Removes the record and every index entry pointing at it; returns 1 when it existed.
DELETE = """
local tenant_json = redis.call('HGET', KEYS[1], 'tenant')
if not tenant_json then return 0 end
local tenant = cjson.decode(tenant_json)
local idem = redis.call('HGET', KEYS[1], 'idempotency_key')
if idem then
  local idem_key = cjson.decode(idem)
  if redis.call('GET', idem_key) == ARGV[2] then redis.call('DEL', idem_key) end
end
redis.call('ZREM', ARGV[1] .. ':tenant:' .. tenant .. ':jobs', ARGV[2])
redis.call('SREM', ARGV[1] .. ':tenant:' .. tenant .. ':active', ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('DEL', KEYS[1], KEYS[3])
return 1
"""

# KEYS: queued zset. ARGV: prefix, cutoff (due at or before it: stale), now, most to claim,
#       window seconds, most doublings of the backoff.
# Claims queued jobs that are due and that nobody holds a lease on. The n-th claim of a job
# (counted in its `queued_resends` field) moves its score to now + window * (2^n - 1), so it
# is due again 2^n windows later: a job merely waiting behind long ones gets a few duplicate
# messages, not one per window, and concurrent callers skip a claimed job meanwhile.
# Entries whose job is no longer queued (or gone) are dropped. Returns the claimed ids.
CLAIM_STALE_QUEUED = """
local claimed = {}
local stale = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[4])
for _, id in ipairs(stale) do
  local job_key = ARGV[1] .. ':job:' .. id
  local status = redis.call('HGET', job_key, 'status')
  if status ~= 'queued' then
    redis.call('ZREM', KEYS[1], id)
  elseif redis.call('EXISTS', ARGV[1] .. ':lease:' .. id) == 0 then
    local resends = redis.call('HINCRBY', job_key, 'queued_resends', 1)
    local doublings = math.min(resends, tonumber(ARGV[6]))
    local due = tonumber(ARGV[3]) + tonumber(ARGV[5]) * (2 ^ doublings - 1)
    redis.call('ZADD', KEYS[1], string.format('%.6f', due), id)
    table.insert(claimed, id)
  end
end
return claimed
"""

# KEYS: lease key. ARGV: owner, ttl ms. Extends the lease only for its owner.
RENEW_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease key. ARGV: owner. Deletes the lease only for its owner.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
