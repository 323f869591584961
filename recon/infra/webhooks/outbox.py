"""The webhook outbox: which final jobs still owe their receiver a delivery, and when it is due.

The final transition (`recon.infra.job_scripts.TRANSITION`) puts a job with a `callback_url`
in the outbox, due at once, in the same atomic step that makes it final, so no completion is
ever missed, whoever ended the job. Dispatchers (`recon.worker.webhook_dispatcher`) claim due
entries (the claim moves the due time ahead, so two dispatchers never send the same delivery
at once), send, and record the attempt here: delivered, due again later, or given up. Purging
a job removes its entry. Lua scripts keep each step atomic; the key layout is in
`recon.infra.job_store`.
"""

from __future__ import annotations

import json
import time
from typing import cast

import redis

# KEYS: outbox zset. ARGV: prefix, now, most to claim, claimed-until time.
# Claims entries due at `now` whose job still has a pending webhook by moving their due time to
# the claimed-until time; entries of jobs that are gone or no longer pending are dropped.
# Returns the claimed job ids.
CLAIM_DUE = """
local claimed = {}
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do
  if redis.call('HGET', ARGV[1] .. ':job:' .. id, 'callback_status') == '"pending"' then
    redis.call('ZADD', KEYS[1], ARGV[4], id)
    table.insert(claimed, id)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return claimed
"""

# KEYS: job hash, outbox zset. ARGV: job id, outcome ("delivered", "retry" or "failed"), now,
#       next due time (retry), error JSON string ("" when none).
# Records one attempt of a pending webhook: counts it, then marks it delivered, due again at
# the given time, or failed; every change bumps the record's version (the view shows it).
# Returns 1, or 0 when the webhook is not pending any more (a late duplicate attempt).
RECORD_ATTEMPT = """
if redis.call('HGET', KEYS[1], 'callback_status') ~= '"pending"' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HINCRBY', KEYS[1], 'callback_attempts', 1)
if ARGV[2] == 'delivered' then
  redis.call('HSET', KEYS[1], 'callback_status', '"delivered"', 'callback_delivered_at', ARGV[3])
  redis.call('HDEL', KEYS[1], 'callback_last_error')
  redis.call('ZREM', KEYS[2], ARGV[1])
elseif ARGV[2] == 'retry' then
  redis.call('HSET', KEYS[1], 'callback_last_error', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1])
else
  redis.call('HSET', KEYS[1], 'callback_status', '"failed"', 'callback_last_error', ARGV[5])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
"""


def outbox_key(prefix: str) -> str:
    """The outbox's sorted set (job ids scored by when their webhook is due)."""
    return f"{prefix}:webhooks"


class WebhookOutbox:
    """The outbox over a redis-py client (``decode_responses=True``) and the store's prefix."""

    def __init__(self, client: redis.Redis, *, prefix: str) -> None:
        self.redis = client
        self.prefix = prefix
        self.key = outbox_key(prefix)
        self._claim_due = client.register_script(CLAIM_DUE)
        self._record = client.register_script(RECORD_ATTEMPT)

    def claim_due(self, limit: int, claim_for_s: float) -> list[str]:
        """Claim up to `limit` due webhooks for `claim_for_s` seconds; return their job ids.

        Until the claim runs out nobody else gets them; record each attempt before then.
        """
        now = time.time()
        args: list[str | int] = [self.prefix, repr(now), limit, repr(now + claim_for_s)]
        found = self._claim_due(keys=[self.key], args=args)
        return [str(job_id) for job_id in cast(list[str], found)]

    def due_at(self, job_id: str) -> float | None:
        """When the job's webhook is due (or claimed until), or None when not in the outbox."""
        score = self.redis.zscore(self.key, job_id)
        return None if score is None else float(cast(float, score))

    def delivered(self, job_id: str) -> bool:
        """Record a delivered attempt; False when the webhook was not pending any more."""
        return self._record_attempt(job_id, "delivered", 0.0, None)

    def retry_at(self, job_id: str, due: float, error: str) -> bool:
        """Record a failed attempt; the webhook is due again at `due` (UNIX seconds)."""
        return self._record_attempt(job_id, "retry", due, error)

    def give_up(self, job_id: str, error: str) -> bool:
        """Record the last attempt: the webhook is `failed` with `error`."""
        return self._record_attempt(job_id, "failed", 0.0, error)

    def _record_attempt(self, job_id: str, outcome: str, due: float, error: str | None) -> bool:
        keys = [f"{self.prefix}:job:{job_id}", self.key]
        args = [job_id, outcome, repr(time.time()), repr(due),
                "" if error is None else json.dumps(error)]
        return bool(self._record(keys=keys, args=args))
