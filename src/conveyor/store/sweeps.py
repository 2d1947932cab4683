"""The scheduler's and the worker's scans for tasks nobody is looking after.

Apart from the hot path because they read many rows by status and time rather than by id, and
run on a timer rather than per task; each is one indexed SELECT.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from conveyor.models import Task, TaskStatus
from conveyor.store.database import Database
from conveyor.store.rows import task_from_row
from conveyor.store.schema import task

S = TaskStatus


class SqlSweeps:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def overdue(self, now: float, grace: float, limit: int) -> list[Task]:
        deadline = task.c.started_at + task.c.timeout + grace
        query = (
            sa.select(task)
            .where(task.c.status == str(S.PROCESSING), deadline < now)
            .limit(limit)
        )
        return await self._select(query)

    async def processing_on(self, worker_id: str) -> list[Task]:
        query = sa.select(task).where(
            task.c.worker_id == worker_id, task.c.status == str(S.PROCESSING)
        )
        return await self._select(query)

    async def pending_page(
        self, after_id: str | None, created_before: float, limit: int
    ) -> list[Task]:
        query = (
            sa.select(task)
            .where(task.c.status == str(S.PENDING), task.c.updated_at < created_before)
            .order_by(task.c.id)
            .limit(limit)
        )
        if after_id is not None:
            query = query.where(task.c.id > after_id)
        return await self._select(query)

    async def _select(self, query: sa.Select[Any]) -> list[Task]:
        return [task_from_row(r) for r in await self._db.rows(query)]
