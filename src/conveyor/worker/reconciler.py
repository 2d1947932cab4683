"""Reconciler: give back ids that sit in this worker's active list but that it never received.

A fetch moves ids into the active list atomically, but if the reply is lost (a dropped
connection, a client-side retry) the worker never learns of them: they stay PENDING in the
store, "held" in Redis, and nobody runs them until this worker dies. An id seen in the active
list on two passes in a row without the processor holding it is handed back to its queue (the
two passes let a fetch whose reply is still on its way finish first).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from conveyor.coordination.protocol import Coordination, QueueItem
from conveyor.runtime import Duty

log = logging.getLogger(__name__)


class Reconciler(Duty):
    name = "reconciler"

    def __init__(
        self,
        worker_id: str,
        coordination: Coordination,
        holding: Callable[[], set[str]],
        interval: float,
    ) -> None:
        super().__init__(interval)
        self._worker_id = worker_id
        self._coord = coordination
        self._holding = holding
        self._suspects: set[QueueItem] = set()
        self.returned = 0

    async def run_once(self, now: float) -> None:
        active = await self._coord.worker_queues.active(self._worker_id)
        holding = self._holding()
        strays = {item for item in active if item.task_id not in holding}
        lost = sorted(strays & self._suspects, key=lambda item: item.task_id)
        self._suspects = strays - set(lost)
        if not lost:
            return
        log.warning("returning %d ids this worker never received", len(lost),
                    extra={"worker_id": self._worker_id})
        await self._coord.worker_queues.ack(self._worker_id, lost)
        await self._coord.queues.enqueue(lost)
        self.returned += len(lost)
