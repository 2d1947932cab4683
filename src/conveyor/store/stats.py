"""Aggregates over the task table for the stats endpoint and the metrics sampler.

Kept apart from the hot path: these are GROUP BY scans an operator asks for, and nothing that
moves a task depends on them.
"""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.store.database import Database
from conveyor.store.schema import task


class SqlStats:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def recent(self, since: float) -> tuple[int, dict[str, int]]:
        created = sa.select(sa.func.count()).where(task.c.created_at >= since)
        finished = (
            sa.select(task.c.status, sa.func.count())
            .where(task.c.finished_at >= since)
            .group_by(task.c.status)
        )
        async with self._db.connect() as conn:
            count = int(await conn.scalar(created) or 0)
            by_status = {r[0]: int(r[1]) for r in await conn.execute(finished)}
        return count, by_status

    async def count_by_status(self) -> dict[tuple[str, str], int]:
        query = sa.select(task.c.task_type, task.c.status, sa.func.count()).group_by(
            task.c.task_type, task.c.status
        )
        async with self._db.connect() as conn:
            return {(r[0], r[1]): int(r[2]) for r in await conn.execute(query)}
