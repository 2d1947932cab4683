"""Promoter: move delayed ids (retries after backoff, ``run_at`` tasks) onto their queues."""

from __future__ import annotations

from conveyor.coordination.protocol import TaskQueues
from conveyor.duty import Duty
from conveyor.scheduler.elector import Elector


class Promoter(Duty):
    name = "promoter"

    def __init__(self, queues: TaskQueues, elector: Elector, interval: float, batch: int) -> None:
        super().__init__(interval)
        self._queues = queues
        self._elector = elector
        self._batch = batch

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is None:
            return
        while await self._queues.promote_due(now, self._batch) >= self._batch:
            pass
