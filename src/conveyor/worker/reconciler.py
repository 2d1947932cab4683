"""Reconciler: make this worker's records agree with what it really holds.

Two ways a worker can lose track of a task while staying alive, both seen in the fault suite:

- a fetch whose reply is lost (a dropped connection, a client-side retry) leaves ids in the
  active list that the worker never received: PENDING in the store, "tracked" in Redis, run by
  nobody until the worker dies;
- a start whose commit landed but whose answer did not leaves a row PROCESSING under this
  worker that it does not run, until the task's own deadline (which may be an hour).

An id seen on two passes in a row without the processor claiming it is put right: a stray
active entry goes back to its queue, a stray PROCESSING row is recorded as a lost attempt and
rerun without spending a retry. Two passes let a fetch or a start still in flight finish first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.models import QueueItem
from conveyor.outcomes import Outcomes
from conveyor.store.protocol import Sweeps

log = logging.getLogger(__name__)


class Reconciler(Duty):
    name = "reconciler"

    def __init__(
        self,
        worker_id: str,
        sweeps: Sweeps,
        coordination: Coordination,
        claimed: Callable[[], Collection[str]],
        outcomes: Outcomes,
        interval: float,
    ) -> None:
        super().__init__(interval)
        self._worker_id = worker_id
        self._sweeps = sweeps
        self._coord = coordination
        self._claimed = claimed
        self._outcomes = outcomes
        self._stray_items: set[QueueItem] = set()
        self._stray_rows: set[str] = set()
        self.returned = 0

    async def run_once(self, now: float) -> None:
        await self._return_stray_items()
        await self._expire_stray_rows(now)

    async def _return_stray_items(self) -> None:
        active = await self._coord.worker_queues.active(self._worker_id)
        claimed = self._claimed()
        strays = {item for item in active if item.task_id not in claimed}
        lost = sorted(strays & self._stray_items, key=lambda item: item.task_id)
        self._stray_items = strays - set(lost)
        if not lost:
            return
        log.warning("returning %d ids this worker never received", len(lost),
                    extra={"worker_id": self._worker_id})
        await self._coord.worker_queues.ack(self._worker_id, lost)
        await self._coord.queues.enqueue(lost)
        self.returned += len(lost)

    async def _expire_stray_rows(self, now: float) -> None:
        rows = await self._sweeps.processing_on(self._worker_id)
        claimed = self._claimed()
        strays = {t.id: t for t in rows if t.id not in claimed}
        lost = [t for task_id, t in strays.items() if task_id in self._stray_rows]
        self._stray_rows = set(strays) - {t.id for t in lost}
        if not lost:
            return
        log.warning("%d tasks are PROCESSING under this worker but not running here",
                    len(lost), extra={"worker_id": self._worker_id})
        await self._outcomes.expire(
            lost, now, error="the worker lost track of this attempt", lost_to_crash=True,
            worker_id=self._worker_id,
        )
