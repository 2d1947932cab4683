"""What the console's overview reads once a second, at a cost that does not grow with the table.

``SqlStats.count_by_status`` groups every row (1.5 s at 1,000,000 rows on MariaDB); the
overview asks each second, so each number here is read through an index with a bound:

- counts by state: one count per state over its index range, stopped at ``cap`` rows
  (``SELECT COUNT(*) FROM (SELECT 1 ... LIMIT cap + 1)``), so a state past the cap reads as
  "more than cap". Counters kept by the moves would be exact, but every finish would then also
  update a hot counter row in its transaction, serialising the finishers on it; a bounded read
  costs the finish path nothing.
- pending per type and priority, with the oldest age: the ``scan`` PENDING rows that have been
  due longest, oldest first by ``(status, run_at)``; the age of a row is how long it has been
  due (``now - run_at``), so a delayed task is not "waiting" before its time.
- queue wait and run time: the ``sample`` tasks that finished last (``ix_task_finished``):
  wait is ``started_at - max(created_at, run_at)`` of the last attempt, run is
  ``finished_at - started_at``. The metrics histograms would give the same figures, but only
  for the attempts this process ran; the store sees the whole fleet's.
- started and retried per second: the moves of the window in ``task_logs``
  (``ix_task_logs_at``), to PROCESSING and from a final state back to PENDING; the cost
  follows the throughput, not the table.
"""

from __future__ import annotations

import sqlalchemy as sa

from conveyor.models import Priority, TaskStatus
from conveyor.store.database import Database
from conveyor.store.protocol import Pending, Timing
from conveyor.store.rows import in_tenant
from conveyor.store.schema import task, task_logs

S = TaskStatus
# PENDING -> PROCESSING is an attempt starting; a final state -> PENDING is a retry (WAITING ->
# PENDING, a workflow step released, is neither).
RETRIED_FROM = [str(S.PENDING), str(S.FAILED), str(S.TIMEOUT), str(S.CANCELLED)]


class SqlGlance:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def counts(self, cap: int, tenant: str | None = None) -> dict[str, int]:
        """Tasks per state (the states with some), each read stopped at ``cap + 1``."""
        found: dict[str, int] = {}
        async with self._db.connect() as conn:
            for status in S:
                inner = in_tenant(sa.select(sa.literal(1)).where(task.c.status == str(status)),
                                  tenant).limit(cap + 1).subquery()
                n = int(await conn.scalar(sa.select(sa.func.count()).select_from(inner)) or 0)
                if n:
                    found[str(status)] = n
        return found

    async def pending(self, now: float, scan: int, tenant: str | None = None) -> list[Pending]:
        """The ``scan`` PENDING rows due longest, grouped by type and priority."""
        due = in_tenant(
            sa.select(task.c.task_type, task.c.priority, task.c.run_at)
            .where(task.c.status == str(S.PENDING), task.c.run_at <= now), tenant,
        ).order_by(task.c.run_at).limit(scan).subquery()
        query = sa.select(
            due.c.task_type, due.c.priority, sa.func.count().label("n"),
            sa.func.min(due.c.run_at).label("oldest"),
        ).group_by(due.c.task_type, due.c.priority)
        return [Pending(r["task_type"], Priority(r["priority"]).label, int(r["n"]),
                        float(r["oldest"])) for r in await self._db.rows(query)]

    async def timings(self, sample: int, tenant: str | None = None) -> list[Timing]:
        """Wait and run time of the ``sample`` tasks that finished last (ran at least once)."""
        query = in_tenant(
            sa.select(task.c.created_at, task.c.run_at, task.c.started_at, task.c.finished_at)
            .where(task.c.finished_at.is_not(None), task.c.started_at.is_not(None)), tenant,
        ).order_by(task.c.finished_at.desc()).limit(sample)
        return [
            Timing(max(0.0, r["started_at"] - max(r["created_at"], r["run_at"])),
                   max(0.0, r["finished_at"] - r["started_at"]))
            for r in await self._db.rows(query)
        ]

    async def moves(self, since: float, tenant: str | None = None) -> tuple[int, int]:
        """Attempts started and tasks sent back to PENDING (retries) since ``since``."""
        query = (sa.select(task_logs.c.to_status, sa.func.count().label("n"))
                 .where(task_logs.c.at >= since,
                        task_logs.c.to_status.in_([str(S.PROCESSING), str(S.PENDING)]),
                        task_logs.c.from_status.in_(RETRIED_FROM))
                 .group_by(task_logs.c.to_status))
        if tenant is not None:
            query = query.join_from(task_logs, task, task.c.id == task_logs.c.task_id).where(
                task.c.tenant == tenant)
        by = {r["to_status"]: int(r["n"]) for r in await self._db.rows(query)}
        return by.get(str(S.PROCESSING), 0), by.get(str(S.PENDING), 0)
