"""Firing (leader): create each schedule's task once per fire time (docs/design.md §9, §8.11).

A pass takes the due schedules soonest first by the ``next_fire_at`` index, ``batch`` at a time,
plans each (catch-up window, overlap policy: ``schedules.plan``), and records the whole batch in
one transaction (``store.schedules.fire``): tasks, fire rows and the schedules moved on, each
conditional on the version it was read with. Only then are the new tasks placed on their queues;
a crash in between leaves PENDING rows for the orphan sweep. Then schedules with buffered fires
whose previous task has ended release their oldest one.

Between passes the duty sleeps until the next schedule is due (one indexed MIN query), at most
``interval``, so an idle leader with any number of schedules costs a query a second.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Sequence

from conveyor.coordination.protocol import TaskQueues
from conveyor.duty import Duty, sleep_unless
from conveyor.errors import Conflict, NotFound
from conveyor.placement import place
from conveyor.scheduler.elector import Elector
from conveyor.schedules.fires import build_fires
from conveyor.schedules.model import FireKind, FireOutcome, Overlap, Schedule
from conveyor.schedules.plan import PlannedFire, plan_due
from conveyor.service import TaskService
from conveyor.store.protocol import FireResult, FireWrite, Schedules, TaskRecords

log = logging.getLogger(__name__)

#: Live fires one schedule gets per pass (a catch-up of a per-second schedule after a long
#: failover comes in a few passes rather than one huge one).
LIVE_PER_PASS = 100
#: Batches per pass: 10,000 schedules due at once at the default batch.
BATCHES_PER_PASS = 10


class Firing(Duty):
    name = "firing"

    def __init__(
        self, schedules: Schedules, tasks: TaskRecords, queues: TaskQueues,
        service: TaskService, elector: Elector, *, interval: float, batch: int,
    ) -> None:
        super().__init__(interval)
        self._schedules = schedules
        self._tasks = tasks
        self._queues = queues
        self._service = service
        self._elector = elector
        self._batch = batch
        self._next_due: float | None = None
        self.outcomes: Counter[str] = Counter()  # fires recorded, by outcome (for metrics)
        self.passes = 0  # passes as leader

    async def run_once(self, now: float) -> None:
        self._next_due = None
        epoch = self._elector.epoch
        if epoch is None:
            return
        self.passes += 1
        for _ in range(BATCHES_PER_PASS):
            if self._elector.epoch != epoch:
                return
            due = await self._schedules.due(now, self._batch)
            if due:
                await self._fire_due(due, now, epoch)
            if len(due) < self._batch:
                break
        await self._release_buffered(now, epoch)
        self._next_due = await self._schedules.next_due()

    async def wait_for_next_pass(self) -> None:
        delay = self.interval
        if self._next_due is not None:
            delay = min(delay, max(0.0, self._next_due - self.clock()))
        await sleep_unless(self._stopping, delay)

    async def _fire_due(self, due: Sequence[Schedule], now: float, epoch: int) -> None:
        running = await self._running(due)
        writes, cancels = [], []
        for s in due:
            plan = plan_due(s, now, s.last_task_id in running, LIVE_PER_PASS)
            fires = await build_fires(self._service, s, plan.fires, FireKind.SCHEDULED, now, epoch)
            writes.append(FireWrite(s, fires, plan.next_fire_at))
            if plan.cancel_task_id is not None:
                cancels.append(plan.cancel_task_id)
        result = await self._record(writes, now)
        for task_id in cancels:
            await self._cancel(task_id)
        if result.stale:
            log.info("%d schedules changed while firing; planned again next pass",
                     len(result.stale))

    async def _release_buffered(self, now: float, epoch: int) -> None:
        waiting = await self._schedules.with_buffered(self._batch)
        running = await self._running(waiting)
        writes = []
        for s in waiting:
            if s.last_task_id in running:
                continue
            # The count and the BUFFERED rows are written together, so a counted one exists.
            oldest = await self._schedules.buffered_fires(s, 1)
            planned = [PlannedFire(f.fire_at, FireOutcome.FIRED, "fired after waiting")
                       for f in oldest]
            fires = await build_fires(self._service, s, planned, FireKind.SCHEDULED, now, epoch)
            writes.append(FireWrite(s, fires, s.next_fire_at))
        if writes:
            await self._record(writes, now)

    async def _record(self, writes: Sequence[FireWrite], now: float) -> FireResult:
        result = await self._schedules.fire(writes, now)
        await place(self._queues, result.created, now)
        self.outcomes.update(str(f.outcome) for f in result.recorded)
        return result

    async def _running(self, schedules: Sequence[Schedule]) -> set[str]:
        """Ids of the previous fires' tasks that have not finished, for the overlap policies."""
        ids = [s.last_task_id for s in schedules
               if s.last_task_id is not None and (s.overlap != Overlap.ALLOW or s.buffered)]
        if not ids:
            return set()
        return {t.id for t in await self._tasks.get_many(ids) if not t.status.is_final}

    async def _cancel(self, task_id: str) -> None:
        with contextlib.suppress(Conflict, NotFound):  # it ended meanwhile: nothing to cancel
            await self._service.cancel(task_id)
