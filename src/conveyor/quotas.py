"""Per-tenant limits at run time: the dispatcher's weights and the create quotas (issue 12).

``LimitsCache`` holds every tenant's ``tenant_limits`` row, read again at most every few
seconds, so the dispatcher asks for weights on every pass and the API checks quotas on every
create without a SQL read each time. ``Quotas.admit`` refuses a create that would break its
tenant's quota with ``TooManyRequests`` (429 + ``Retry-After``) before anything is written:

- ``max_pending``: the tenant's PENDING count, cached for about a second per tenant (at most
  ``MAX_TRACKED`` tenants) and raised by what this process admits meanwhile, so a burst within
  the second is counted too;
- ``creates_per_second``: a token bucket in coordination (``take_tokens`` on the bucket
  ``@tenant:<name>``, shared by every API process), taken whole for a batch.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping

from conveyor.coordination.protocol import TaskQueues
from conveyor.errors import BackendUnavailable, TooManyRequests
from conveyor.models import TenantLimits
from conveyor.store.protocol import TenantLimitRecords

log = logging.getLogger(__name__)

LIMITS_TTL = 3.0  # seconds a read of tenant_limits is used: a change applies within this
PENDING_TTL = 1.0  # seconds a tenant's PENDING count is used
MAX_TRACKED = 1024  # tenants whose PENDING count is cached at once (least recent dropped)
PENDING_RETRY_AFTER = 2.0  # a tenant at its max_pending: try again after this
TENANT_BUCKET = "@tenant:"  # '@' never starts a task type, so no type shares the bucket


class LimitsCache:
    """Every tenant's limits, read at most every ``ttl`` seconds by one caller at a time. A
    failed read keeps the last rows (the dispatcher must not stop over a SQL hiccup) and is
    retried on the next call; with nothing read yet it is raised."""

    def __init__(
        self, records: TenantLimitRecords, ttl: float = LIMITS_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._records = records
        self._ttl = ttl
        self._clock = clock
        self._rows: dict[str, TenantLimits] | None = None
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    async def all(self) -> Mapping[str, TenantLimits]:
        async with self._lock:
            if self._rows is None or self._clock() - self._read_at >= self._ttl:
                try:
                    self._rows = {r.tenant: r for r in await self._records.list_limits()}
                except BackendUnavailable as exc:
                    if self._rows is None:
                        raise
                    log.warning("tenant limits not re-read, keeping the last: %s", exc)
                self._read_at = self._clock()
            return self._rows

    async def weights(self) -> dict[str, int]:
        """Tenant → items per turn, for the tenants whose weight is not 1; none (every tenant
        equal) while the table could never be read, so dispatch goes on regardless."""
        try:
            rows = await self.all()
        except BackendUnavailable as exc:
            log.warning("tenant weights unavailable, serving tenants equally: %s", exc)
            return {}
        return {t: r.weight for t, r in rows.items() if r.weight != 1}

    async def of(self, tenant: str) -> TenantLimits | None:
        return (await self.all()).get(tenant)


class Quotas:
    """Admit or refuse creates by their tenant's quotas; see the module docstring."""

    def __init__(
        self, limits: LimitsCache, records: TenantLimitRecords, queues: TaskQueues,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._limits = limits
        self._records = records
        self._queues = queues
        self._clock = clock
        self._pending: OrderedDict[str, tuple[int, float]] = OrderedDict()

    async def admit(self, tenant: str, count: int) -> None:
        """Return if ``count`` new tasks fit ``tenant``'s quotas (taking their create tokens),
        else raise ``TooManyRequests`` naming the quota."""
        limits = await self._limits.of(tenant)
        if limits is None:
            return
        pending = None
        if limits.max_pending is not None:
            pending = await self._pending_count(tenant)
            if pending + count > limits.max_pending:
                raise TooManyRequests(
                    f"tenant {tenant!r} has {pending} pending tasks; {count} more would pass "
                    f"its max_pending quota of {limits.max_pending}", PENDING_RETRY_AFTER,
                )
        if limits.creates_per_second is not None:
            await self._take(tenant, limits.creates_per_second, count)
        cached = self._pending.get(tenant)
        if pending is not None and cached is not None:  # count what is admitted meanwhile
            self._pending[tenant] = (cached[0] + count, cached[1])

    async def _pending_count(self, tenant: str) -> int:
        now = self._clock()
        cached = self._pending.get(tenant)
        if cached is not None and now - cached[1] < PENDING_TTL:
            self._pending.move_to_end(tenant)
            return cached[0]
        count = await self._records.count_pending(tenant)
        self._pending[tenant] = (count, now)
        self._pending.move_to_end(tenant)
        while len(self._pending) > MAX_TRACKED:
            self._pending.popitem(last=False)
        return count

    async def _take(self, tenant: str, rate: float, count: int) -> None:
        burst = max(1.0, rate)
        if count > burst:
            raise TooManyRequests(
                f"a batch of {count} tasks is more than tenant {tenant!r}'s creates_per_second "
                f"quota of {rate:g} lets through at once ({math.floor(burst)}); send smaller "
                "batches", count / rate,
            )
        bucket = f"{TENANT_BUCKET}{tenant}"
        if not await self._queues.take_tokens(bucket, rate, count, self._clock(), whole=True):
            raise TooManyRequests(
                f"tenant {tenant!r} is over its creates_per_second quota of {rate:g}",
                count / rate,
            )
