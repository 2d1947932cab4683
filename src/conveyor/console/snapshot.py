"""What the overview shows, read once a second at most per tenant and process.

Every open overview polls each second; without this, ten tabs would run ten times the same
queries. A snapshot is built from the calls the API's ``/stats``, ``/scheduler`` and
``/workers`` make (``Operations``), and shared by every page that asks within ``max_age``.
The rates are counts over the last ``WINDOW`` seconds through the ``created_at`` and
``finished_at`` indexes; the counts by state are the same grouped read ``/stats`` answers.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from conveyor.models import Lease, WorkerInfo
from conveyor.operations import Operations, QueueState, Stats

WINDOW = 5.0  # seconds the per-second rates average over
LATE_HEARTBEATS = 3  # a worker more than this many heartbeat intervals behind is "late"


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    stats: Stats
    queues: QueueState
    leader: Lease | None
    duties: dict[str, float]
    workers: list[WorkerInfo]
    alerts: list[str] = field(default_factory=list)

    def rate(self, *statuses: str) -> float:
        return sum(self.stats.finished.get(s, 0) for s in statuses) / self.stats.window

    @property
    def created_rate(self) -> float:
        return self.stats.created / self.stats.window


def alerts(snap: Snapshot, heartbeat_interval: float) -> list[str]:
    """What an operator should look at now (pure)."""
    found = []
    if snap.leader is None:
        found.append("no scheduler holds the lease: nothing is being dispatched")
    late = [w.worker_id for w in snap.workers
            if snap.at - w.last_heartbeat > LATE_HEARTBEATS * heartbeat_interval]
    if late:
        found.append(f"late heartbeat from {', '.join(late)}")
    for task_type, n in sorted(snap.queues.no_worker.items()):
        found.append(f"{n} pending {task_type} task(s): no live worker runs this type")
    return found


class Snapshots:
    def __init__(self, ops: Operations, heartbeat_interval: float, max_age: float = 1.0) -> None:
        self._ops = ops
        self._interval = heartbeat_interval
        self._max_age = max_age
        self._held: dict[str | None, Snapshot] = {}
        self._locks: dict[str | None, asyncio.Lock] = {}

    async def get(self, tenant: str | None) -> Snapshot:
        held = self._held.get(tenant)
        if held is not None and time.time() - held.at < self._max_age:
            return held
        async with self._locks.setdefault(tenant, asyncio.Lock()):
            held = self._held.get(tenant)  # another request may have read it meanwhile
            if held is not None and time.time() - held.at < self._max_age:
                return held
            fresh = await self._read(tenant)
            self._held[tenant] = fresh
            return fresh

    async def _read(self, tenant: str | None) -> Snapshot:
        now = time.time()
        state = await self._ops.scheduler(tenant)
        snap = Snapshot(
            now, await self._ops.stats(WINDOW, now, tenant), state.queues, state.leader,
            state.duties, await self._ops.live_workers(tenant),
        )
        snap.alerts.extend(alerts(snap, self._interval))
        return snap
