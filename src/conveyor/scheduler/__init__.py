"""The scheduler: one elected leader dispatches, promotes, sweeps, recovers, fires schedules
and purges."""

from __future__ import annotations

from conveyor.balancing import Balancer
from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty, Supervisor
from conveyor.observability.task_spans import DispatchSpans
from conveyor.outcomes import Outcomes
from conveyor.quotas import LimitsCache
from conveyor.scheduler.archive import JsonlArchive
from conveyor.scheduler.dispatcher import Dispatcher
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.firing import Firing
from conveyor.scheduler.orphans import OrphanSweeper
from conveyor.scheduler.promoter import Promoter
from conveyor.scheduler.recoverer import Recoverer
from conveyor.scheduler.releases import ReleaseSweeper
from conveyor.scheduler.reporter import Reporter
from conveyor.scheduler.retention import Retention, purge_targets
from conveyor.scheduler.timeouts import TimeoutSweeper
from conveyor.service import TaskService
from conveyor.store.protocol import TaskStore


class Scheduler:
    """The scheduler's duties, built together, started and stopped together.

    ``duties`` is the start order: the elector first, so the others find the lease decided.
    ``stop`` goes in reverse, so nothing acts under the lease once the elector has released it
    (releasing at once lets a standby take over without waiting for the lease to expire).
    """

    def __init__(
        self,
        scheduler_id: str,
        settings: Settings,
        store: TaskStore,
        coordination: Coordination,
        catalog: Catalog,
        balancer: Balancer,
        outcomes: Outcomes,
        service: TaskService,
    ) -> None:
        s = settings.scheduler
        self.id = scheduler_id
        self.elector = Elector(
            coordination.lease, store.epochs, scheduler_id, s.leader_lock_ttl,
            s.leader_renew_interval, s.leader_retry_interval,
        )
        self.dispatcher = Dispatcher(
            coordination, self.elector, balancer, catalog, batch_size=s.batch_size,
            scan_interval=s.scan_interval, look_past=s.look_past,
            weights=s.priority_weights if s.priority_mode == "weighted" else None,
            tenant_weights=LimitsCache(store.tenant_limits).weights,
            on_moved=DispatchSpans(store.tasks).record,
        )
        self.promoter = Promoter(
            coordination.queues, self.elector, min(0.2, s.scan_interval), s.batch_size
        )
        self.timeouts = TimeoutSweeper(
            store.sweeps, outcomes, self.elector, interval=s.timeout_check_interval,
            grace=s.timeout_grace, batch=s.batch_size,
        )
        self.recoverer = Recoverer(
            store, coordination, outcomes, self.elector,
            # Half a heartbeat: a dead worker is noticed within half a beat of its TTL running
            # out; each pass is one ZRANGEBYSCORE and one indexed SQL query on the leader.
            interval=min(s.timeout_check_interval, settings.worker.heartbeat_interval / 2),
            heartbeat_ttl=settings.worker.heartbeat_ttl,
            late_after=1.5 * settings.worker.heartbeat_interval,
        )
        self.reporter = Reporter(
            coordination.lease, self.elector, lambda: self.duties, s.leader_renew_interval
        )
        self.orphans = OrphanSweeper(
            store.sweeps, coordination, self.elector, interval=s.orphan_sweep_interval,
            min_age=s.orphan_min_age,
        )
        self.releases = ReleaseSweeper(
            store.deps, coordination.queues, self.elector, interval=s.orphan_sweep_interval,
            min_age=s.orphan_min_age,
        )
        self.firing = Firing(
            store.schedules, store.tasks, coordination.queues, service, self.elector,
            interval=s.schedule_interval, batch=s.schedule_batch,
        )
        r = settings.retention
        archive = None if r.archive_dir is None else JsonlArchive(r.archive_dir)
        if archive is not None:
            archive.check()
        self.retention = Retention(
            store.retention, self.elector, purge_targets(r), interval=r.interval,
            batch=r.batch_size, batches_per_pass=r.batches_per_pass, archive=archive,
        )
        self._supervisor = Supervisor(self.duties)

    @property
    def duties(self) -> list[Duty]:
        return [
            self.elector, self.dispatcher, self.promoter, self.timeouts, self.recoverer,
            self.orphans, self.releases, self.firing, self.retention, self.reporter,
        ]

    async def start(self, now: float, *, rebuild_queues: bool = False) -> None:
        """Start every duty. ``rebuild_queues`` first takes the lease and re-queues every
        PENDING row at once: in-process queues start empty, and a standalone restart must not
        wait for the orphan sweep's first pass."""
        if rebuild_queues:
            await self.elector.run_once(now)
            await self.orphans.sweep(now, min_age=0.0)
        self._supervisor.start()

    async def wait(self) -> BaseException | None:
        """Return when a duty ends on its own (a bug); its exception says why."""
        return await self._supervisor.wait()

    async def stop(self) -> None:
        await self._supervisor.stop()
