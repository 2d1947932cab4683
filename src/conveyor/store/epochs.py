"""Scheduler epochs: the floor a new lease must rise above, and the record of each lease.

Its own part because only the elector uses it, and because the floor reads two tables (epochs
that wrote task logs, and leases that only dispatched) that nothing else joins.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from conveyor.errors import Conflict
from conveyor.store.database import Database
from conveyor.store.schema import leader_history, task_logs


class SqlEpochs:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def max_epoch(self) -> int:
        async with self._db.connect() as conn:
            logged = await conn.scalar(sa.select(sa.func.max(task_logs.c.epoch)))
            leased = await conn.scalar(sa.select(sa.func.max(leader_history.c.epoch)))
        return max(int(logged or 0), int(leased or 0))

    async def record_epoch(self, epoch: int, holder: str, now: float) -> None:
        try:
            async with self._db.begin() as conn:
                await conn.execute(
                    leader_history.insert().values(epoch=epoch, holder=holder, acquired_at=now)
                )
        except IntegrityError as exc:
            raise Conflict(f"epoch {epoch} was handed out before") from exc
