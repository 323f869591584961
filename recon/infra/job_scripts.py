"""Lua scripts that make every job-store change atomic inside Redis.

Keys are derived inside the scripts from a prefix argument, so the store targets a single Redis
instance (not Redis Cluster). Status values and the run token are stored as bare strings so the
scripts compare them directly. Every change of what a client can see increments the record's
`version`, which the event stream uses as its event id.

Status changes all go through `TRANSITION`, which carries the state machine of
`recon.infra.job_states` and checks the transition's guard (run token, lease, no lease) in the
same atomic step that writes. It also maintains the indexes: running (reaper), queued (re-sends
of lost messages), finished (retention), the tenant's active set (quota) and the webhook outbox
(a final job with a `callback_url` is due for delivery the moment it becomes final).
"""

from recon.infra.job_states import transitions_json

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
redis.call('HSET', KEYS[1], 'version', '1')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], ARGV[1], 'PX', ARGV[4]) end
return {'created', ARGV[1]}
"""

# KEYS: job hash, running zset, queued zset, lease key, finished zset, webhook outbox zset.
# ARGV: prefix, job id, transition name, token ("" when the guard needs none), now,
#       fields-to-set JSON object, fields-to-delete JSON list, fields-to-increment JSON list.
# Returns the previous status when applied, or "!<why>": "!missing", "!<status>" (not a
# source of this transition), "!fenced" (wrong run token or lease), "!leased" (someone holds
# the lease), "!cancel_requested". A final job with a callback_url gets its webhook pending,
# with a delivery id (job id and final version) that every attempt repeats.
TRANSITION = """
local table_ = cjson.decode([[__TRANSITIONS__]])
local t = table_[ARGV[3]]
if not t then return redis.error_reply('unknown transition ' .. ARGV[3]) end
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '!missing' end
local allowed = false
for _, s in ipairs(t.sources) do if s == status then allowed = true end end
if not allowed then return '!' .. status end
if t.guard == 'run' then
  if redis.call('HGET', KEYS[1], 'run_token') ~= ARGV[4] then return '!fenced' end
elseif t.guard == 'lease' then
  if redis.call('GET', KEYS[4]) ~= ARGV[4] then return '!fenced' end
elseif t.guard == 'unleased' then
  if redis.call('EXISTS', KEYS[4]) == 1 then return '!leased' end
end
if t.refuse_cancel and redis.call('HGET', KEYS[1], 'cancel_requested') == '1' then
  return '!cancel_requested'
end
local new = t.target
redis.call('HSET', KEYS[1], 'status', new, 'updated_at', ARGV[5])
for name, value in pairs(cjson.decode(ARGV[6])) do redis.call('HSET', KEYS[1], name, value) end
for _, name in ipairs(cjson.decode(ARGV[7])) do redis.call('HDEL', KEYS[1], name) end
for _, name in ipairs(cjson.decode(ARGV[8])) do redis.call('HINCRBY', KEYS[1], name, 1) end
redis.call('HINCRBY', KEYS[1], 'version', 1)
if new == 'running' then
  redis.call('HSET', KEYS[1], 'run_token', ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[2])
else
  redis.call('ZREM', KEYS[2], ARGV[2])
end
if new == 'queued' then
  redis.call('HDEL', KEYS[1], 'run_token', 'queued_resends')
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[2])
else
  redis.call('ZREM', KEYS[3], ARGV[2])
end
if new == 'succeeded' or new == 'failed' or new == 'canceled' then
  redis.call('HSET', KEYS[1], 'finished_at', ARGV[5])
  local tenant = cjson.decode(redis.call('HGET', KEYS[1], 'tenant'))
  redis.call('SREM', ARGV[1] .. ':tenant:' .. tenant .. ':active', ARGV[2])
  redis.call('ZADD', KEYS[5], ARGV[5], ARGV[2])
  local url = cjson.decode(redis.call('HGET', KEYS[1], 'params') or '{}')['callback_url']
  if type(url) == 'string' and url ~= '' then
    local delivery_id = ARGV[2] .. '-' .. redis.call('HGET', KEYS[1], 'version')
    redis.call('HSET', KEYS[1], 'callback_status', '"pending"', 'callback_attempts', '0',
               'callback_delivery_id', cjson.encode(delivery_id))
    redis.call('ZADD', KEYS[6], ARGV[5], ARGV[2])
  end
end
return status
""".replace("__TRANSITIONS__", transitions_json())

# KEYS: job hash, running zset. ARGV: job id, now, progress JSON or "", run token.
# Refreshes the heartbeat (and progress) of the run holding `run token`; returns 1, or 0 when
# the job is not running under that token (requeued, final, or another run owns it).
HEARTBEAT = """
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'run_token') ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[1], 'heartbeat_at', ARGV[2], 'updated_at', ARGV[2])
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'progress', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
"""

# KEYS: lease key, job hash. ARGV: owner, ttl ms.
# Extends the lease for its owner (1). A lease that merely expired (a stall longer than its
# TTL) is taken again (2) only while the job is still running under the owner's run token: a
# run the reaper requeued, or that another run replaced, gets 0 and must stop.
KEEP_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then return 0 end
if redis.call('HGET', KEYS[2], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[2], 'run_token') ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 2
"""

# KEYS: job hash. ARGV: now.
# Sets the cancel flag of a queued or running job; returns its status, or "!<status>" /
# "!missing" when it is final or unknown. The caller then cancels a queued job at once.
REQUEST_CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '!missing' end
if status ~= 'queued' and status ~= 'running' then return '!' .. status end
redis.call('HSET', KEYS[1], 'cancel_requested', '1', 'updated_at', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'version', 1)
return status
"""

# KEYS: job hash, tenant index zset, deletion zset. ARGV: job id, now.
# Records that the job is being deleted: hidden from its tenant at once (index entry and
# idempotency key removed, reads answer 404), cancel flag set so a running worker stops, and
# queued for the sweeper, which removes the objects and then the record. Returns the status,
# "!deleting" when already recorded, or "!missing".
MARK_DELETED = """
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return '!missing' end
if redis.call('HEXISTS', KEYS[1], 'deleted_at') == 1 then return '!deleting' end
redis.call('HSET', KEYS[1], 'deleted_at', ARGV[2], 'cancel_requested', '1', 'updated_at', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('ZREM', KEYS[2], ARGV[1])
local idem = redis.call('HGET', KEYS[1], 'idempotency_key')
if idem then
  local idem_key = cjson.decode(idem)
  if redis.call('GET', idem_key) == ARGV[1] then redis.call('DEL', idem_key) end
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
return status
"""

# KEYS: job hash, running zset, lease key, queued zset, finished zset, deletion zset,
#       webhook outbox zset.
# ARGV: prefix, job id. Removes the record and every index entry pointing at it.
PURGE = """
local tenant_json = redis.call('HGET', KEYS[1], 'tenant')
if tenant_json then
  local tenant = cjson.decode(tenant_json)
  local idem = redis.call('HGET', KEYS[1], 'idempotency_key')
  if idem then
    local idem_key = cjson.decode(idem)
    if redis.call('GET', idem_key) == ARGV[2] then redis.call('DEL', idem_key) end
  end
  redis.call('ZREM', ARGV[1] .. ':tenant:' .. tenant .. ':jobs', ARGV[2])
  redis.call('SREM', ARGV[1] .. ':tenant:' .. tenant .. ':active', ARGV[2])
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('ZREM', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[6], ARGV[2])
redis.call('ZREM', KEYS[7], ARGV[2])
redis.call('DEL', KEYS[1], KEYS[3])
if tenant_json then return 1 end
return 0
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

# KEYS: lease key. ARGV: owner. Deletes the lease only for its owner.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
