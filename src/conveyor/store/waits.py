"""WAITING tasks past their ``wait_deadline`` cancelled, a batch per transaction (docs/design.md
§10): the leader's wait sweep (``scheduler/waits.py``) calls it.

One page is one transaction: the WAITING rows past their deadline, oldest deadline first, read
through ``ix_task_status_wait_deadline`` ``FOR UPDATE``; one UPDATE per chunk of ids,
conditional on WAITING (a parent's finish that released the task first wins, and the task is
then left alone); one INSERT of their log rows, carrying the leader's epoch like every move a
sweep makes; and the verdicts on their own children in the same transaction (a cancelled
parent cancels its waiting children, or releases those whose policy is ``run``), as any final
move settles its children.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from conveyor.events import Event, EventBus, EventKind
from conveyor.models import TaskStatus
from conveyor.store.database import Database
from conveyor.store.deps import Settled, settle_children
from conveyor.store.rows import chunks, log_row, select_tasks
from conveyor.store.schema import task, task_logs

S = TaskStatus
REASON = "waited too long for its parents: wait_timeout_seconds passed while still WAITING"


def restarted_wait(now: float) -> sa.ColumnElement[float]:
    """A reopened task's wait deadline: as long a wait again, from ``now`` (the wait it was
    created with is ``wait_deadline - created_at``); NULL stays NULL."""
    return task.c.wait_deadline + (now - task.c.created_at)


class SqlWaits:
    def __init__(self, db: Database, events: EventBus) -> None:
        self._db = db
        self._events = events

    async def expire_waits(self, now: float, limit: int, epoch: int) -> Settled:
        """Cancel up to ``limit`` WAITING tasks whose deadline passed; returns them (in
        ``cancelled``, with what their cancel cascaded to) and the children it released."""
        query = (sa.select(task).where(task.c.status == str(S.WAITING),
                                       task.c.wait_deadline < now)
                 .order_by(task.c.wait_deadline, task.c.id).limit(limit))
        async with self._db.begin() as conn:
            overdue = await select_tasks(conn, query.with_for_update())
            for chunk in chunks([t.id for t in overdue]):
                await conn.execute(
                    task.update().where(task.c.id.in_(chunk), task.c.status == str(S.WAITING))
                    .values(status=str(S.CANCELLED), error=REASON, finished_at=now,
                            updated_at=now, version=task.c.version + 1))
            moved = [replace(t, status=S.CANCELLED, error=REASON, finished_at=now,
                             version=t.version + 1) for t in overdue]
            for rows in chunks([log_row(t, S.WAITING, S.CANCELLED, now, REASON, epoch=epoch)
                                for t in moved]):
                await conn.execute(task_logs.insert(), list(rows))
            settled = await settle_children(conn, moved, now)
        self._events.emit([Event(EventKind.CANCELLED, t, now)
                           for t in moved + settled.cancelled])
        return Settled(settled.released, moved + settled.cancelled)
