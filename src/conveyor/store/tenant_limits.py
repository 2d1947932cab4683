"""Per-tenant weights and quotas (``tenant_limits``), written by ``conveyor tenants`` and read
through short caches (``limits.LimitsCache``), plus the PENDING count the pending quota needs."""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.audit import AuditEntry, limits_view
from conveyor.models import TaskStatus, TenantLimits
from conveyor.store.audit import delete_recorded, upsert_recorded
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
        await upsert_recorded(
            self._db, tenant_limits, {"tenant": limits.tenant}, row, audit, limits.updated_at,
            _view, limits_view(limits), limits.tenant,
        )
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
        return await delete_recorded(
            self._db, tenant_limits, {"tenant": tenant}, audit, _view, tenant
        )

    async def count_pending(self, tenant: str) -> int:
        """The tenant's PENDING tasks, for its ``max_pending`` quota (one indexed count; the
        caller caches it for about a second)."""
        query = sa.select(sa.func.count()).select_from(task).where(
            task.c.tenant == tenant, task.c.status == TaskStatus.PENDING.value,
        )
        async with self._db.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


def _from_row(row: sa.RowMapping) -> TenantLimits:
    return TenantLimits(
        tenant=row["tenant"], weight=row["weight"], max_pending=row["max_pending"],
        creates_per_second=row["creates_per_second"], updated_at=row["updated_at"],
    )


def _view(row: sa.RowMapping | None) -> dict[str, object] | None:
    return limits_view(None if row is None else _from_row(row))
