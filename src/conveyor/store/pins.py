"""Broadcast copies whose worker is gone (docs/design.md §10): a copy is pinned to one worker
(``task.pinned_worker``), so once that worker has left, its PENDING copies can never run and
the leader's pin sweep (``scheduler/pins.py``) cancels them.

Both reads are one range of ``ix_task_status_pinned_worker`` (status PENDING, a worker set), so
their cost follows the broadcast copies waiting, not the table. A copy that was running on the
worker when it died is first expired by the recoverer (and, with a retry left, made PENDING
again), and cancelled by the next pass. The cancel is one transaction per page: rows read
``FOR UPDATE``, one UPDATE per chunk conditional on PENDING, their logs (with the leader's
epoch) in one INSERT, and their children settled as for any final move.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import sqlalchemy as sa

from conveyor.events import Event, EventBus, EventKind
from conveyor.models import Task, TaskStatus
from conveyor.store.database import Database
from conveyor.store.deps import Settled, settle_children
from conveyor.store.rows import chunks, log_row, select_tasks
from conveyor.store.schema import task, task_logs

S = TaskStatus


def reason(worker_id: str) -> str:
    return f"its worker {worker_id} is gone: a broadcast copy runs on that worker only"


class SqlPins:
    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events

    async def pinned_workers(self) -> set[str]:
        """The workers that PENDING broadcast copies are pinned to."""
        query = (sa.select(task.c.pinned_worker).distinct()
                 .where(task.c.status == str(S.PENDING), task.c.pinned_worker.isnot(None)))
        return {r.pinned_worker for r in await self._db.rows(query)}

    async def cancel_pinned(
        self, worker_ids: Sequence[str], now: float, limit: int, epoch: int
    ) -> Settled:
        """Cancel up to ``limit`` PENDING copies pinned to ``worker_ids``; the cancelled (to
        take off the queues) and what their cancel released or cancelled in turn."""
        query = (sa.select(task).where(task.c.status == str(S.PENDING),
                                       task.c.pinned_worker.in_(list(worker_ids)))
                 .order_by(task.c.id).limit(limit))
        async with self._db.begin() as conn:
            found = await select_tasks(conn, query.with_for_update())
            by_worker: dict[str, list[str]] = defaultdict(list)
            for t in found:
                by_worker[t.pinned_worker or ""].append(t.id)
            for worker, ids in by_worker.items():  # one reason per worker
                for chunk in chunks(ids):
                    await conn.execute(
                        task.update().where(task.c.id.in_(chunk), task.c.status == str(S.PENDING))
                        .values(status=str(S.CANCELLED), error=reason(worker), finished_at=now,
                                updated_at=now, version=task.c.version + 1))
            moved = [_cancelled(t, now) for t in found]
            for rows in chunks([log_row(t, S.PENDING, S.CANCELLED, now, t.error or "",
                                        epoch=epoch) for t in moved]):
                await conn.execute(task_logs.insert(), list(rows))
            settled = await settle_children(conn, moved, now)
        self._events.emit([Event(EventKind.CANCELLED, t, now)
                           for t in moved + settled.cancelled])
        return Settled(settled.released, moved + settled.cancelled)


def _cancelled(t: Task, now: float) -> Task:
    return replace(t, status=S.CANCELLED, error=reason(t.pinned_worker or ""), finished_at=now,
                   version=t.version + 1)
