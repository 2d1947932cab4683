"""Recoverer: reclaim what dead workers held.

Two sources, because either can be missing: the coordination registry (a heartbeat key that
expired, or a worker late with its heartbeat whose connections are all gone, i.e. its process
died: its queued ids go back to the queues at once, and so do the ids it had taken into its
active list but not started yet, still PENDING in SQL) and the store (PROCESSING rows whose
worker has not heart-beaten in SQL for a heartbeat TTL, which also covers a Redis that lost its
data). Running attempts of a dead worker become TIMEOUT and are rerun without spending a retry.
"""

from __future__ import annotations

import logging

from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.errors import StaleEpoch
from conveyor.models import QueueItem, TaskStatus
from conveyor.outcomes import Outcomes
from conveyor.placement import place
from conveyor.scheduler.elector import Elector
from conveyor.store.protocol import TaskStore

log = logging.getLogger(__name__)


class Recoverer(Duty):
    name = "recoverer"

    def __init__(
        self, store: TaskStore, coordination: Coordination, outcomes: Outcomes,
        elector: Elector, *, interval: float, heartbeat_ttl: float, late_after: float,
    ) -> None:
        super().__init__(interval)
        self._store, self._coord, self._outcomes = store, coordination, outcomes
        self._elector = elector
        self._ttl = heartbeat_ttl
        # A worker is asked about its connections only once it missed a heartbeat, and taken
        # for dead only when they stay gone for as long again (a live worker reconnects within
        # a second of a Redis blip): one that keeps beating is never reaped early.
        self._late_after = late_after
        self._unconnected: dict[str, float] = {}  # worker id -> first pass that saw it so
        self.recovered = 0

    async def run_once(self, now: float) -> None:
        epoch = self._elector.epoch
        if epoch is None:
            return
        registry = self._coord.registry
        listed = await registry.live_workers()
        late = [w.worker_id for w in listed if now - w.last_heartbeat > self._late_after]
        gone = {w: "its heartbeat expired" for w in await registry.expired_workers(now)}
        gone |= {w: "its connections closed" for w in await self._disconnected(late, now)}
        try:
            for worker_id, why in gone.items():
                reaped = await registry.reap(epoch, worker_id)
                log.warning(
                    "worker %s is gone (%s): %d queued ids re-queued, %d were running",
                    worker_id, why, len(reaped.queued), len(reaped.active),
                    extra={"worker_id": worker_id, "epoch": epoch},
                )
                await self._store.workers.mark_worker(worker_id, "dead", now)
                await self._requeue_unstarted(reaped.active, now)
        except StaleEpoch:
            self._elector.demote()
            return
        live = {w.worker_id for w in listed} - set(gone)
        for worker_id in await self._store.workers.stale_processing_workers(now - self._ttl):
            if worker_id in live:
                continue
            running = await self._store.sweeps.processing_on(worker_id)
            moved = await self._outcomes.expire(
                running, now, error=f"worker {worker_id} stopped answering",
                lost_to_crash=True, epoch=epoch,
            )
            self.recovered += len(moved)

    async def _requeue_unstarted(self, active: list[QueueItem], now: float) -> None:
        """An id the worker took but whose start it never committed is PENDING in SQL, so the
        PROCESSING sweep below never sees it: left alone, only the orphan sweep (minutes) would
        find it. The start's compare-and-set on PENDING keeps a worker that was only frozen
        from running it twice."""
        if not active:
            return
        found = await self._store.tasks.get_many([item.task_id for item in active])
        await place(self._coord.queues, [t for t in found if t.status == TaskStatus.PENDING], now)

    async def _disconnected(self, late: list[str], now: float) -> list[str]:
        seen = await self._coord.registry.disconnected(late)
        self._unconnected = {w: self._unconnected.get(w, now) for w in seen}
        return [w for w, since in self._unconnected.items() if now - since >= self._late_after]
