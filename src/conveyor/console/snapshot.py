"""What the overview shows, read once a second at most per tenant and process (less often
when the read is slow, see ``Snapshots``).

Every open overview polls each second; without this, ten tabs would run ten times the same
queries. A snapshot is built from the calls the API's ``/stats``, ``/scheduler`` and
``/workers`` make (``Operations``), and shared by every page that asks.
The rates are counts over the last ``WINDOW`` seconds through the ``created_at`` and
``finished_at`` indexes; the counts by state are the same grouped read ``/stats`` answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

from conveyor.models import Lease, WorkerInfo
from conveyor.operations import Operations, QueueState, Stats

log = logging.getLogger(__name__)
WINDOW = 5.0  # seconds the per-second rates average over
LATE_HEARTBEATS = 3  # a worker more than this many heartbeat intervals behind is "late"
SLOW_FACTOR = 4.0  # a snapshot is re-read at most once per this many of its read times
GROWTH_STEP = 60.0  # the backlog is sampled once a minute ...
GROWTH_STEPS = 5  # ... and "growing" when it rose at each of the last five samples


@dataclass
class Backlog:
    """Pending totals sampled once a ``GROWTH_STEP`` (while someone watches the overview), to
    tell a backlog that keeps growing from one that is only large."""

    samples: deque[tuple[float, int]] = field(
        default_factory=lambda: deque(maxlen=GROWTH_STEPS + 1))

    def add(self, at: float, pending: int) -> None:
        if not self.samples or at - self.samples[-1][0] >= GROWTH_STEP:
            self.samples.append((at, pending))

    def growing(self) -> bool:
        counts = [n for _, n in self.samples]
        return len(counts) > GROWTH_STEPS and all(a < b for a, b in pairwise(counts))


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


def alerts(snap: Snapshot, heartbeat_interval: float, growing: bool = False) -> list[str]:
    """What an operator should look at now (pure)."""
    found = []
    if growing:
        found.append(f"the backlog has grown for {GROWTH_STEPS} minutes in a row "
                     f"({sum(snap.queues.lengths.values())} queued now)")
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
    """Snapshots per tenant, shared by every request of this process.

    A snapshot younger than its age limit is served as it is. An older one is still served
    at once while one background read replaces it (never two at a time for a tenant), so a
    slow store makes the numbers older, never the pages slower, and its load stays bounded:
    the limit is ``max_age`` or ``SLOW_FACTOR`` times the last read's duration, whichever is
    longer (a read of 2 s on a large table is repeated at most every 8 s). Only the very
    first request for a tenant waits for a read.
    """

    def __init__(self, ops: Operations, heartbeat_interval: float, max_age: float = 1.0) -> None:
        self._ops = ops
        self._interval = heartbeat_interval
        self._max_age = max_age
        self._held: dict[str | None, Snapshot] = {}
        self._took: dict[str | None, float] = {}
        self._locks: dict[str | None, asyncio.Lock] = {}
        self._refreshing: dict[str | None, asyncio.Task[None]] = {}
        self._backlogs: dict[str | None, Backlog] = {}

    def invalidate(self) -> None:
        """After an action the next page must show its effect: every snapshot is dropped."""
        self._held.clear()

    async def idle(self) -> None:
        """Wait for the background reads in flight (before the store closes)."""
        await asyncio.gather(*self._refreshing.values(), return_exceptions=True)

    def age_limit(self, tenant: str | None) -> float:
        return max(self._max_age, SLOW_FACTOR * self._took.get(tenant, 0.0))

    async def get(self, tenant: str | None) -> Snapshot:
        held = self._held.get(tenant)
        if held is None:
            async with self._locks.setdefault(tenant, asyncio.Lock()):
                held = self._held.get(tenant)  # another request may have read it meanwhile
                if held is None:
                    await self._refresh(tenant)
                    return self._held[tenant]
        if time.time() - held.at >= self.age_limit(tenant) and tenant not in self._refreshing:
            self._refreshing[tenant] = asyncio.create_task(self._refresh_quietly(tenant))
        return held

    async def _refresh(self, tenant: str | None) -> None:
        began = time.monotonic()
        self._held[tenant] = await self._read(tenant)
        self._took[tenant] = time.monotonic() - began

    async def _refresh_quietly(self, tenant: str | None) -> None:
        """A background read: a failure keeps the old snapshot (and is logged)."""
        try:
            await self._refresh(tenant)
        except Exception:
            log.warning("the console's overview could not be read", exc_info=True)
        finally:
            self._refreshing.pop(tenant, None)

    async def _read(self, tenant: str | None) -> Snapshot:
        now = time.time()
        state = await self._ops.scheduler(tenant)
        snap = Snapshot(
            now, await self._ops.stats(WINDOW, now, tenant), state.queues, state.leader,
            state.duties, await self._ops.live_workers(tenant),
        )
        backlog = self._backlogs.setdefault(tenant, Backlog())
        backlog.add(now, sum(snap.queues.lengths.values()))
        snap.alerts.extend(alerts(snap, self._interval, backlog.growing()))
        return snap
