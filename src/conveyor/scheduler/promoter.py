"""Promoter: move delayed ids (retries after backoff, ``run_at`` tasks) onto their queues.

A pass moves at most ``batches_per_pass`` batches, so a burst of due ids (say 300,000 tasks
created with one ``run_at``) is promoted over several passes, each of bounded cost, rather
than in one pass that holds Redis for as long as the burst is large.
"""

from __future__ import annotations

from conveyor.coordination.protocol import TaskQueues
from conveyor.duty import Duty
from conveyor.scheduler.elector import Elector

#: Batches one pass moves at most (10,000 ids at the default batch; passes run every 0.2 s).
BATCHES_PER_PASS = 20


class Promoter(Duty):
    name = "promoter"

    def __init__(
        self, queues: TaskQueues, elector: Elector, interval: float, batch: int,
        batches_per_pass: int = BATCHES_PER_PASS,
    ) -> None:
        super().__init__(interval)
        self._queues = queues
        self._elector = elector
        self._batch = batch
        self._batches = batches_per_pass

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is None:
            return
        for _ in range(self._batches):
            if await self._queues.promote_due(now, self._batch) < self._batch:
                return
