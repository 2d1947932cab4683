"""Finisher: write finished attempts in batches, then release them from the active list.

The order matters for at-least-once delivery: the store first, the ack second. A crash in
between leaves the id in the active list; recovery re-queues it and the next start is refused
by the store because the task is already final.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from conveyor.coordination.protocol import WorkerQueues
from conveyor.duty import Duty
from conveyor.models import QueueItem
from conveyor.outcomes import Outcomes
from conveyor.store.protocol import Outcome
from conveyor.worker.completions import Completions


class Finisher(Duty):
    name = "finisher"

    def __init__(
        self,
        worker_id: str,
        outcomes: Outcomes,
        worker_queues: WorkerQueues,
        completions: Completions,
        released: Callable[[Sequence[QueueItem]], None],
        batch: int = 500,
    ) -> None:
        super().__init__(interval=0.5)
        self._worker_id = worker_id
        self._outcomes = outcomes
        self._worker_queues = worker_queues
        self._completions = completions
        self._released = released
        self._batch = batch

    async def wait_for_next_pass(self) -> None:
        if not len(self._completions):
            await self._completions.wait(self.interval)

    async def run_once(self, now: float) -> None:
        """Write what had finished by ``now``, stamped ``now``. Attempts that finish while this
        pass writes wait for the next one: stamped with this pass's ``now``, they would read as
        finished before they started."""
        left = len(self._completions)
        while left > 0 and (written := await self.flush_batch(now, min(left, self._batch))):
            left -= written

    async def flush_batch(self, now: float, count: int) -> int:
        batch = self._completions.take(count)
        outcomes: list[Outcome] = [o for o, _ in batch if o is not None]
        try:
            if outcomes:
                await self._outcomes.record(outcomes, now)
            await self._worker_queues.ack(self._worker_id, [item for _, item in batch])
        except BaseException:
            self._completions.put_back(batch)
            raise
        self._released([item for _, item in batch])
        return len(batch)
