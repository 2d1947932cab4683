"""The scheduler: one elected leader dispatches, promotes, sweeps and recovers."""

from __future__ import annotations

from conveyor.balancing import Balancer
from conveyor.catalog import Catalog
from conveyor.config import Settings
from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.scheduler.dispatcher import Dispatcher
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.orphans import OrphanSweeper
from conveyor.scheduler.promoter import Promoter
from conveyor.scheduler.recoverer import Recoverer
from conveyor.scheduler.reporter import Reporter
from conveyor.scheduler.timeouts import TimeoutSweeper
from conveyor.store.protocol import TaskStore


class Scheduler:
    """The scheduler's duties, built together; ``duties`` is also their start order."""

    def __init__(
        self,
        scheduler_id: str,
        settings: Settings,
        store: TaskStore,
        coordination: Coordination,
        catalog: Catalog,
        balancer: Balancer,
    ) -> None:
        s = settings.scheduler
        self.id = scheduler_id
        self.elector = Elector(
            coordination.lease, store.epochs, scheduler_id, s.leader_lock_ttl,
            s.leader_renew_interval,
        )
        self.dispatcher = Dispatcher(
            coordination, self.elector, balancer, catalog, batch_size=s.batch_size,
            scan_interval=s.scan_interval,
            weights=s.priority_weights if s.priority_mode == "weighted" else None,
        )
        self.promoter = Promoter(
            coordination.queues, self.elector, min(0.2, s.scan_interval), s.batch_size
        )
        self.timeouts = TimeoutSweeper(
            store.sweeps, store.moves, coordination, catalog, settings.tasks, self.elector,
            interval=s.timeout_check_interval, grace=s.timeout_grace, batch=s.batch_size,
        )
        self.recoverer = Recoverer(
            store, coordination, catalog, settings.tasks, self.elector,
            interval=min(s.timeout_check_interval, settings.worker.heartbeat_interval),
            heartbeat_ttl=settings.worker.heartbeat_ttl,
        )
        self.reporter = Reporter(
            coordination.lease, self.elector, lambda: self.duties, s.leader_renew_interval
        )
        self.orphans = OrphanSweeper(
            store.sweeps, coordination, self.elector, interval=s.orphan_sweep_interval,
            min_age=s.orphan_min_age,
        )

    @property
    def duties(self) -> list[Duty]:
        return [
            self.elector, self.dispatcher, self.promoter, self.timeouts, self.recoverer,
            self.orphans, self.reporter,
        ]
