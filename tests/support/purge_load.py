"""A retention purge under load, shared by its test and ``bench/retention.py``: a store filled
with old finished tasks in bulk, the hot path (creates, and the starts and finishes workers
write when dispatched work reaches them) run beside the purge, and the counts of both.

The fill writes rows directly with the drivers' ``executemany``, 5,000 rows a transaction
(SQLAlchemy compiling a multi-row VALUES of that size costs more than the insert itself), each
task SUCCESS with one log row, finished over the 30 days before the retention window began, so
all of them are expired.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

from conveyor.config import RetentionSettings
from conveyor.coordination.local import LocalCoordination
from conveyor.ids import new_id
from conveyor.models import TaskStatus
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.retention import Retention, purge_targets
from conveyor.store.protocol import Outcome
from conveyor.store.rows import task_to_row
from conveyor.store.schema import task, task_logs
from conveyor.store.sql import SqlStore
from tests.support.finished import new_task

DAY = 86_400.0
FILL_CHUNK = 5000


async def fill(store: SqlStore, tasks: int, now: float, keep: float) -> None:
    """``tasks`` SUCCESS tasks finished before ``now - keep``, each with one log row."""
    span = 30 * DAY
    template = new_task(now - keep - span - 60)
    for start in range(0, tasks, FILL_CHUNK):
        task_rows, log_rows = [], []
        for i in range(start, min(tasks, start + FILL_CHUNK)):
            done = now - keep - span + span * i / tasks
            t = replace(template, id=new_id(done - 60), status=TaskStatus.SUCCESS, attempt=1,
                        created_at=done - 60, run_at=done - 60, started_at=done - 1,
                        finished_at=done, result={"ok": True})
            task_rows.append(task_to_row(t, done))
            log_rows.append({"task_id": t.id, "attempt": 1, "from_status": "PROCESSING",
                             "to_status": "SUCCESS", "at": done, "message": "",
                             "worker_id": "w0", "epoch": None})
        async with store.db.begin() as conn:
            await conn.execute(task.insert(), task_rows)
            await conn.execute(task_logs.insert(), log_rows)


@dataclass
class HotPath:
    """One client creating tasks one request at a time, and one worker starting and finishing
    them in batches: what must keep moving while the purge runs. Counts carry their times."""

    store: SqlStore
    created: list[float] = field(default_factory=list)
    create_seconds: list[float] = field(default_factory=list)  # each create's latency
    finished: list[float] = field(default_factory=list)
    _pending: list[str] = field(default_factory=list)

    async def creates(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t, began = new_task(time.time()), time.monotonic()
            await self.store.tasks.insert([t])
            self._pending.append(t.id)
            self.created.append(time.monotonic())
            self.create_seconds.append(self.created[-1] - began)

    async def runs(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch, self._pending = self._pending[:200], self._pending[200:]
            if not batch:
                await asyncio.sleep(0.01)
                continue
            started = await self.store.moves.start(batch, "w1", time.time())
            await self.store.moves.finish(
                [Outcome(t.id, t.attempt, TaskStatus.SUCCESS, result={}) for t in started],
                time.time())
            self.finished.extend([time.monotonic()] * len(started))

    @staticmethod
    def between(times: list[float], since: float, until: float) -> int:
        return sum(1 for x in times if since <= x < until)


async def leading_purger(store: SqlStore, policy: RetentionSettings) -> Retention:
    """The retention duty under a lease of its own (in-process coordination)."""
    elector = Elector(LocalCoordination().as_coordination().lease, store.epochs, "purger",
                      600.0, 150.0)
    await elector.run_once(time.time())
    return Retention(store.retention, elector, purge_targets(policy), interval=60.0,
                     batch=policy.batch_size, batches_per_pass=policy.batches_per_pass)


async def purge_everything(duty: Retention, *, paced: bool = False) -> int:
    """Passes until one ends below its cap, back to back or, ``paced``, with the pause the
    running duty takes after a capped pass; the rows it removed in all."""
    before = sum(duty.removed.values())
    while True:
        await duty.run_once(time.time())
        if not duty.behind:
            return sum(duty.removed.values()) - before
        if paced:
            await duty.wait_for_next_pass()
