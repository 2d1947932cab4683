"""What the overview shows, read once a second at most per tenant and process (less often
when the read is slow, see ``Snapshots``).

Every open overview polls each second; without this, ten tabs would run ten times the same
queries. A snapshot is built from the calls the API's ``/stats``, ``/scheduler`` and
``/workers`` make (``Operations``), and shared by every page that asks.
The rates are counts over the last ``WINDOW`` seconds through the ``created_at`` and
``finished_at`` indexes and, for started and retried, the window's ``task_logs``; the counts by
state, the due work and the wait / run percentiles are the bounded reads of ``store.glance``
(its docstring argues each), so a read costs the same at a thousand rows and at ten million.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

from conveyor.console.drift_scan import DRIFT_STEP, Drift, drift
from conveyor.console.figures import Waiting, percentiles, waiting
from conveyor.models import Lease, Priority, TaskStatus, WorkerInfo
from conveyor.operations import Operations, QueueState, Stats
from conveyor.scheduler.elector import Elector
from conveyor.service import TaskService

log = logging.getLogger(__name__)
WINDOW = 5.0  # seconds the per-second rates average over
LATE_HEARTBEATS = 3  # a worker more than this many heartbeat intervals behind is "late"
SLOW_FACTOR = 4.0  # a snapshot is re-read at most once per this many of its read times
GROWTH_STEP = 60.0  # the backlog is sampled once a minute ...
GROWTH_STEPS = 5  # ... and "growing" when it rose at each of the last five samples
COUNT_CAP = 100_000  # a state's count reads at most this many index entries ("> 100,000")
PENDING_SCAN = 10_000  # the due PENDING rows read for the per-type / per-priority ages
TIMING_SAMPLE = 1_000  # the last finished tasks the wait / run percentiles are taken over
DRIFT_SAMPLES = 120  # an hour of drift samples, one every DRIFT_STEP


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
    started: int = 0  # attempts started in the window
    retried: int = 0  # tasks sent back to PENDING in the window
    wait: dict[int, float] = field(default_factory=dict)  # percentile → seconds
    run: dict[int, float] = field(default_factory=dict)
    due: Waiting = field(default_factory=Waiting)
    cap: int = COUNT_CAP
    lease_expiry: float | None = None  # the latest the leader's lease runs out unrenewed

    def count(self, status: str) -> str:
        """A state's count as shown: "> 100,000" past the cap."""
        n = self.stats.by_status.get(status, 0)
        return f"> {self.cap:,}" if n > self.cap else f"{n:,}"

    def rate(self, *statuses: str) -> float:
        return sum(self.stats.finished.get(s, 0) for s in statuses) / self.stats.window

    @property
    def created_rate(self) -> float:
        return self.stats.created / self.stats.window

    @property
    def started_rate(self) -> float:
        return self.started / self.stats.window

    @property
    def retried_rate(self) -> float:
        return self.retried / self.stats.window


def lease_expiry(duties: dict[str, float], ttl: float) -> float | None:
    """When the leader's lease runs out if it is not renewed again: its elector's last run
    (a renewal, published by the reporter with the other duties) plus the lease's TTL. An
    upper bound read from the status every backend already keeps, rather than a TTL query
    added to each of the three backends' lease."""
    renewed = duties.get(Elector.name)
    return None if renewed is None else renewed + ttl


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

    def __init__(self, ops: Operations, service: TaskService, max_age: float = 1.0) -> None:
        self._ops = ops
        self._service = service
        self._store = service.store
        self._interval = service.settings.worker.heartbeat_interval
        self._lease_ttl = service.settings.scheduler.leader_lock_ttl
        self._drifts: dict[str | None, deque[Drift]] = {}
        self._max_age = max_age
        self._held: dict[str | None, Snapshot] = {}
        self._took: dict[str | None, float] = {}
        self._locks: dict[str | None, asyncio.Lock] = {}
        self._refreshing: dict[str | None, asyncio.Task[None]] = {}
        self._backlogs: dict[str | None, Backlog] = {}

    def drift_history(self, tenant: str | None) -> list[Drift]:
        """The drift samples taken for ``tenant``, oldest first."""
        return list(self._drifts.get(tenant, ()))

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
        glance, pending = self._store.glance, str(TaskStatus.PENDING)
        due = waiting(await glance.pending(now, PENDING_SCAN, tenant), now, PENDING_SCAN)
        by_type = {t: {pending: d.count} for t, d in due.by_type.items()}
        own_queues = None if tenant is None else {
            p.label: due.by_priority[p.label].count if p.label in due.by_priority else 0
            for p in Priority}
        state = await self._ops.scheduler(
            tenant, {(t, pending): d.count for t, d in due.by_type.items()}, own_queues)
        created, finished = await self._store.stats.recent(now - WINDOW, tenant)
        started, retried = await glance.moves(now - WINDOW, tenant)
        timings = await glance.timings(TIMING_SAMPLE, tenant)
        stats = Stats(await glance.counts(COUNT_CAP, tenant), by_type, WINDOW, created, finished)
        snap = Snapshot(
            now, stats, state.queues, state.leader, state.duties,
            await self._ops.live_workers(tenant), started=started, retried=retried,
            wait=percentiles(t.wait for t in timings), run=percentiles(t.run for t in timings),
            due=due, lease_expiry=lease_expiry(state.duties, self._lease_ttl),
        )
        backlog = self._backlogs.setdefault(tenant, Backlog())
        backlog.add(now, sum(snap.queues.lengths.values()))
        snap.alerts.extend(alerts(snap, self._interval, backlog.growing()))
        await self._sample_drift(tenant, now)
        return snap

    async def _sample_drift(self, tenant: str | None, now: float) -> None:
        """One drift reading every ``DRIFT_STEP`` while someone watches (bounded, see
        ``drift_scan``); ``DRIFT_SAMPLES`` of them make the drift page's chart."""
        held = self._drifts.get(tenant)
        if not held or now - held[-1].at >= DRIFT_STEP:
            await self.drift(tenant)

    async def drift(self, tenant: str | None) -> Drift:
        """The drift read now, kept as a sample (the drift page's reading counts too)."""
        found = await drift(self._service, tenant)
        samples = self._drifts.setdefault(tenant, deque(maxlen=DRIFT_SAMPLES))
        if not samples or found.at - samples[-1].at >= DRIFT_STEP:
            samples.append(found)
        return found
