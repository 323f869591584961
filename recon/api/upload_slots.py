"""How many uploads one tenant has in flight (being received or checked), across API processes.

A tenant's uploads take slots in one Redis sorted set, ``{prefix}:tenant:{t}:uploads``, whose
members are per-request ids scored by a lease deadline. Taking a slot is one Lua script: drop
expired members, refuse when the set is full, else add. The slot is given back in a `finally`
(shielded from cancellation, so a client that disconnects frees it too); the lease is only the
safety net for an API process that dies mid-upload, whose slots then free themselves one by
one, instead of a shared counter that a crash would leave too high for good.
"""

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import anyio
import redis
from starlette.concurrency import run_in_threadpool

from recon.api.context import ServiceContext
from recon.api.errors import TooManyRequests

#: How long a slot lasts if its request never gives it back (its API process died). Longer
#: than any upload of the largest body over a slow link plus its check.
SLOT_LEASE_S = 900.0

_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[2]) then
  return {0, held}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, held + 1}
"""


class UploadSlots:
    """The per-tenant upload slots of one job store's Redis."""

    def __init__(self, client: "redis.Redis", *, prefix: str, limit: int,
                 lease_s: float = SLOT_LEASE_S) -> None:
        self.redis = client
        self.prefix = prefix
        self.limit = limit
        self.lease_s = lease_s
        self._take = client.register_script(_TAKE)

    def key(self, tenant: str) -> str:
        return f"{self.prefix}:tenant:{tenant}:uploads"

    def take(self, tenant: str) -> tuple[str | None, int]:
        """A new slot's id, or None when the tenant's slots are all taken; and the count held."""
        now, slot = time.time(), uuid.uuid4().hex
        taken, held = cast(
            list[int],
            self._take(
                keys=[self.key(tenant)],
                args=[now, self.limit, now + self.lease_s, slot, int(self.lease_s * 1000)],
            ),
        )
        return (slot if taken else None), int(held)

    def give_back(self, tenant: str, slot: str) -> None:
        self.redis.zrem(self.key(tenant), slot)


@asynccontextmanager
async def upload_slot(context: ServiceContext, tenant: str) -> AsyncIterator[None]:
    """Hold one of the tenant's upload slots for the block; 429 when none is free."""
    settings = context.settings
    slots = UploadSlots(
        context.job_store.redis,
        prefix=settings.redis_key_prefix,
        limit=settings.max_uploads_in_flight_per_tenant,
    )
    slot, held = await run_in_threadpool(slots.take, tenant)
    if slot is None:
        raise TooManyRequests(
            f"{held} uploads from this tenant are already being received or checked; the limit "
            f"is {slots.limit} at a time, retry once one has finished",
            code="too_many_uploads",
            detail={"in_flight": held, "limit": slots.limit},
            headers={"Retry-After": str(settings.retry_after_s)},
        )
    try:
        yield
    finally:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(slots.give_back, tenant, slot)
