"""Aggregates over the task table for the stats endpoint and the metrics sampler.

Kept apart from the hot path: these are GROUP BY scans an operator asks for, and nothing that
moves a task depends on them.
"""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.models import Priority, TaskStatus
from conveyor.store.database import Database
from conveyor.store.rows import in_tenant
from conveyor.store.schema import task


class SqlStats:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def recent(
        self, since: float, tenant: str | None = None
    ) -> tuple[int, dict[str, int]]:
        created = in_tenant(sa.select(sa.func.count()).where(task.c.created_at >= since), tenant)
        finished = in_tenant(
            sa.select(task.c.status, sa.func.count())
            .where(task.c.finished_at >= since)
            .group_by(task.c.status), tenant
        )
        async with self._db.connect() as conn:
            count = int(await conn.scalar(created) or 0)
            by_status = {r[0]: int(r[1]) for r in await conn.execute(finished)}
        return count, by_status

    async def count_by_status(self, tenant: str | None = None) -> dict[tuple[str, str], int]:
        query = in_tenant(sa.select(task.c.task_type, task.c.status, sa.func.count()).group_by(
            task.c.task_type, task.c.status
        ), tenant)
        async with self._db.connect() as conn:
            return {(r[0], r[1]): int(r[2]) for r in await conn.execute(query)}

    async def count_pending_by_priority(self, tenant: str | None = None) -> dict[str, int]:
        """What a tenant-bound caller sees of the queues: the queues themselves hold every
        tenant's items, so their lengths would count other tenants' work."""
        query = in_tenant(
            sa.select(task.c.priority, sa.func.count())
            .where(task.c.status == str(TaskStatus.PENDING))
            .group_by(task.c.priority), tenant
        )
        async with self._db.connect() as conn:
            counts = {Priority(r[0]).label: int(r[1]) for r in await conn.execute(query)}
        return {p.label: counts.get(p.label, 0) for p in Priority}
