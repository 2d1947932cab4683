"""Per-tenant weights and quotas (``tenant_limits``), written by ``conveyor tenants`` and read
through short caches (``limits.LimitsCache``), plus the PENDING count the pending quota needs."""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from conveyor.audit import AuditEntry, limits_view
from conveyor.models import TaskStatus, TenantLimits
from conveyor.store.audit import record
from conveyor.store.database import Database
from conveyor.store.schema import task, tenant_limits


class SqlTenantLimits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_limits(
        self, limits: TenantLimits, *, audit: AuditEntry | None = None
    ) -> TenantLimits:
        """Insert or replace the tenant's row; ``audit`` is recorded in the same transaction,
        with the row as it was before."""
        row = {
            "weight": limits.weight,
            "max_pending": limits.max_pending,
            "creates_per_second": limits.creates_per_second,
            "updated_at": limits.updated_at,
        }

        async def audited(conn: AsyncConnection, before: sa.RowMapping | None) -> None:
            old = None if before is None else _from_row(before)
            await record(conn, audit, limits.updated_at, before=limits_view(old),
                         after=limits_view(limits))

        await self._db.upsert(tenant_limits, "tenant", limits.tenant, row,
                              then=None if audit is None else audited)
        return limits

    async def get_limits(self, tenant: str) -> TenantLimits | None:
        row = await self._db.first(
            sa.select(tenant_limits).where(tenant_limits.c.tenant == tenant)
        )
        return None if row is None else _from_row(row)

    async def list_limits(self) -> list[TenantLimits]:
        query = sa.select(tenant_limits).order_by(tenant_limits.c.tenant)
        return [_from_row(r) for r in await self._db.rows(query)]

    async def delete_limits(self, tenant: str, *, audit: AuditEntry | None = None) -> bool:
        """Drop the tenant's row (back to weight 1, no quota); False when it had none."""
        async with self._db.begin() as conn:
            found = None
            if audit is not None:
                lock = sa.select(tenant_limits).where(tenant_limits.c.tenant == tenant)
                found = (await conn.execute(lock.with_for_update())).mappings().first()
            result = await conn.execute(
                tenant_limits.delete().where(tenant_limits.c.tenant == tenant)
            )
            if result.rowcount and found is not None:
                await record(conn, audit, time.time(), before=limits_view(_from_row(found)),
                             after=None)
        return bool(result.rowcount)

    async def count_pending(self, tenant: str) -> int:
        """The tenant's PENDING tasks, for its ``max_pending`` quota (one indexed count; the
        caller caches it for about a second)."""
        query = sa.select(sa.func.count()).select_from(task).where(
            task.c.status == TaskStatus.PENDING.value,
            # integrator: filter by task.c.tenant == tenant
        )
        async with self._db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


def _from_row(row: sa.RowMapping) -> TenantLimits:
    return TenantLimits(
        tenant=row["tenant"], weight=row["weight"], max_pending=row["max_pending"],
        creates_per_second=row["creates_per_second"], updated_at=row["updated_at"],
    )
