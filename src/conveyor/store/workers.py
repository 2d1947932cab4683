"""The durable worker record (``worker_registry``) and the query that declares workers dead.

Apart from the live registry in the coordination backend on purpose: the recoverer reclaims a
worker's tasks only when both say it is gone, so a Redis that lost its data cannot make every
running task look orphaned.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from conveyor.models import TaskStatus, WorkerInfo, WorkerRecord
from conveyor.store.database import Database
from conveyor.store.rows import dumps
from conveyor.store.schema import task, worker_registry


class SqlWorkers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_workers(self, workers: Sequence[WorkerInfo], state: str, now: float) -> None:
        for w in workers:
            row = {
                **_state(state, now), "host": w.host, "pid": w.pid, "capacity": w.capacity,
                "types": dumps(list(w.types)), "last_heartbeat": now,
            }
            created = {"first_seen": now, "state_changed_at": now}
            await self._db.upsert(worker_registry, {"worker_id": w.worker_id}, row, created)

    async def mark_worker(self, worker_id: str, state: str, now: float) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                worker_registry.update()
                .where(worker_registry.c.worker_id == worker_id)
                .ordered_values(*_state(state, now).items())
            )

    async def stale_processing_workers(self, cutoff: float) -> list[str]:
        w = worker_registry
        query = (
            sa.select(task.c.worker_id)
            .distinct()
            .select_from(task.outerjoin(w, w.c.worker_id == task.c.worker_id))
            .where(
                task.c.status == str(TaskStatus.PROCESSING),
                sa.or_(w.c.worker_id.is_(None), w.c.last_heartbeat < cutoff,
                       w.c.state != "alive"),
            )
        )
        async with self._db.connect() as conn:
            return [r[0] for r in await conn.execute(query) if r[0] is not None]

    async def list_worker_records(self) -> list[WorkerRecord]:
        query = sa.select(worker_registry).order_by(worker_registry.c.worker_id)
        return [
            WorkerRecord(
                worker_id=r["worker_id"], host=r["host"], pid=r["pid"], capacity=r["capacity"],
                types=tuple(orjson.loads(r["types"])), state=r["state"],
                first_seen=r["first_seen"], last_heartbeat=r["last_heartbeat"],
                state_changed_at=r["state_changed_at"],
            )
            for r in await self._db.rows(query)
        ]


def _state(state: str, now: float) -> dict[str, Any]:
    """SET values for a recorded state: ``state_changed_at`` moves to ``now`` only when the
    state differs (a heartbeat is not a change). It comes first because MySQL evaluates SET
    left to right: it must compare against the old state, before ``state`` is assigned."""
    w = worker_registry
    changed_at = sa.case((w.c.state == state, w.c.state_changed_at), else_=now)
    return {"state_changed_at": changed_at, "state": state}
