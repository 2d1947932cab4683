"""Gauges read at scrape time: shared state from coordination, local state from the duties.

Nothing here is pushed by the code it describes. Before each scrape ``Metrics.refresh`` awaits
``Sampler.refresh``, which makes the few coordination calls (queue lengths, paused names, live
workers) and, at most every ``store_every`` seconds, one ``GROUP BY`` on the store; ``collect``
then reports that snapshot together with attributes the local scheduler and worker already keep
(elector epoch, dispatcher and recoverer counts, each duty's ``last_run``, the processor's load).

Which parts a process samples is its runner's choice: ``coordination`` for the fleet-wide view
(API and scheduler processes; a worker need not list the whole fleet on every scrape), the
local ``scheduler`` and ``worker`` when it runs them, the store's ``stats`` for tasks by status
(the API).
Fleet-wide gauges are the same in every process that reports them: aggregate them with
``max``, never ``sum``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from conveyor.coordination.protocol import Coordination
from conveyor.duty import Duty
from conveyor.models import WorkerInfo
from conveyor.observability.metrics import RefreshingCollector
from conveyor.operations import unrunnable

if TYPE_CHECKING:
    from conveyor.scheduler import Scheduler
    from conveyor.store.protocol import TaskStats
    from conveyor.worker import Worker

PRIORITIES = ("high", "normal", "low")


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """What coordination said at ``at``."""

    at: float
    lengths: dict[str, int]
    paused: set[str]
    workers: list[WorkerInfo]


class Sampler(RefreshingCollector):
    """One collector per process for every sampled gauge, so no family is reported twice
    (the fleet view and the local worker both know a worker's capacity)."""

    def __init__(
        self,
        coordination: Coordination | None = None,
        *,
        scheduler: Scheduler | None = None,
        worker: Worker | None = None,
        stats: TaskStats | None = None,
        store_every: float = 15.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._coord = coordination
        self._scheduler = scheduler
        self._worker = worker
        self._stats = stats
        self._store_every = store_every
        self._clock = clock
        self.fleet: FleetSnapshot | None = None
        self.coordination_up = False
        self.by_status: dict[tuple[str, str], int] | None = None
        self._by_status_at = float("-inf")

    async def refresh(self) -> None:
        now = self._clock()
        if self._stats is not None and now - self._by_status_at >= self._store_every:
            self.by_status = None  # a failed query shows no stale numbers
            self._by_status_at = now
            self.by_status = await self._stats.count_by_status()
        if self._coord is not None:
            self.coordination_up = False
            queues = self._coord.queues
            lengths, paused = await queues.lengths(), await queues.paused()
            workers = await self._coord.registry.live_workers()
            self.fleet = FleetSnapshot(now, lengths, paused, workers)
            self.coordination_up = True

    def collect(self) -> Iterator[Metric]:
        if self._coord is not None:
            yield from self._fleet()
        yield from self._workers()
        if self._scheduler is not None:
            yield from self._leadership(self._scheduler)
        yield _duty_runs([*self._scheduler_duties(), *self._worker_duties()])
        if self._stats is not None:
            yield self._tasks_by_status()
            if self._coord is not None:
                yield self._without_worker()

    def describe(self) -> Iterator[Metric]:
        """The same families as ``collect``, so the registry can refuse duplicate names."""
        return self.collect()

    def _fleet(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "conveyor_coordination_up", "1 if the last scrape could read the coordination backend."
        )
        up.add_metric([], 1.0 if self.coordination_up else 0.0)
        yield up
        snap = self.fleet if self.coordination_up else None
        lengths = GaugeMetricFamily(
            "conveyor_queue_length", "Tasks waiting in each priority queue.", labels=["priority"]
        )
        delayed = GaugeMetricFamily(
            "conveyor_delayed_tasks", "Tasks waiting for their run_at (delays, retry backoff)."
        )
        paused = GaugeMetricFamily(
            "conveyor_queue_paused", "1 for each paused priority or task type.", labels=["name"]
        )
        online = GaugeMetricFamily("conveyor_workers_online", "Workers with a live heartbeat.")
        if snap is not None:
            for priority in PRIORITIES:
                lengths.add_metric([priority], snap.lengths.get(priority, 0))
            delayed.add_metric([], snap.lengths.get("delayed", 0))
            for name in sorted(snap.paused):
                paused.add_metric([name], 1.0)
            online.add_metric([], len(snap.workers))
        yield from (lengths, delayed, paused, online)

    def _workers(self) -> Iterator[Metric]:
        """Per-worker gauges: load and heartbeat lag as the registry shows them (fleet view),
        running tasks from the local processor, capacity from either (local wins)."""
        load = GaugeMetricFamily(
            "conveyor_worker_load",
            "Tasks assigned to a worker (its queue plus running), as the dispatcher sees it.",
            labels=["worker"],
        )
        lag = GaugeMetricFamily(
            "conveyor_heartbeat_lag_seconds", "Seconds since a live worker's last heartbeat.",
            labels=["worker"],
        )
        capacity: dict[str, int] = {}
        snap = self.fleet if self._coord is not None and self.coordination_up else None
        if snap is not None:
            for info in snap.workers:
                load.add_metric([info.worker_id], info.load)
                lag.add_metric([info.worker_id], max(0.0, snap.at - info.last_heartbeat))
                capacity[info.worker_id] = info.capacity
        running = GaugeMetricFamily(
            "conveyor_worker_running_tasks",
            "Tasks this worker process holds (running or finished but not yet written).",
            labels=["worker"],
        )
        if self._worker is not None:
            processor = self._worker.processor
            running.add_metric([self._worker.id], processor.load)
            capacity[self._worker.id] = processor.capacity
        slots = GaugeMetricFamily(
            "conveyor_worker_capacity", "Tasks a worker runs at once.", labels=["worker"]
        )
        for worker_id, cap in sorted(capacity.items()):
            slots.add_metric([worker_id], cap)
        if self._coord is not None:
            yield from (load, lag)
        if self._worker is not None:
            yield running
            yield _counter(
                "conveyor_worker_unstoppable_attempts",
                "Attempts that ran on after being told to stop (timeout, cancel, shutdown): an "
                "async function swallowing CancelledError, or a thread-isolated function.",
                self._worker.processor.unstoppable,
            )
        yield slots

    def _leadership(self, scheduler: Scheduler) -> Iterator[Metric]:
        epoch = scheduler.elector.epoch
        leader = GaugeMetricFamily(
            "conveyor_scheduler_is_leader", "1 while this scheduler holds a trusted lease."
        )
        leader.add_metric([], 0.0 if epoch is None else 1.0)
        fencing = GaugeMetricFamily(
            "conveyor_scheduler_epoch", "The fencing epoch this scheduler acts under (0: none)."
        )
        fencing.add_metric([], float(epoch or 0))
        yield from (leader, fencing)
        yield _counter(
            "conveyor_dispatched", "Tasks this scheduler moved to worker queues.",
            scheduler.dispatcher.dispatched,
        )
        yield _counter(
            "conveyor_dispatch_failures",
            "Dispatch passes refused for a stale epoch or failed on an unreachable backend.",
            _attr(scheduler.dispatcher, "refused") + _attr(scheduler.dispatcher, "failed_passes"),
        )
        yield _counter(
            "conveyor_recovered_tasks", "Running tasks of dead workers this scheduler timed out.",
            scheduler.recoverer.recovered,
        )
        yield _counter(
            "conveyor_orphans_requeued", "Lost PENDING tasks re-queued by this scheduler.",
            scheduler.orphans.requeued,
        )
        fires = CounterMetricFamily(
            "conveyor_schedule_fires",
            "Schedule fires this scheduler recorded, by outcome (fired, skipped, buffered, "
            "missed: older than the catch-up window, failed: no task could be built).",
            labels=["outcome"],
        )
        for outcome, count in sorted(scheduler.firing.outcomes.items()):
            fires.add_metric([outcome], count)
        yield fires
        removed = CounterMetricFamily(
            "conveyor_retention_rows_removed",
            "Rows this scheduler's retention deleted, by table.", labels=["table"],
        )
        for table, count in sorted(scheduler.retention.removed.items()):
            removed.add_metric([table], count)
        yield removed

    def _tasks_by_status(self) -> Metric:
        family = GaugeMetricFamily(
            "conveyor_tasks_by_status", "Tasks in the store by type and status.",
            labels=["type", "status"],
        )
        for (task_type, status), count in sorted((self.by_status or {}).items()):
            family.add_metric([task_type, status], count)
        return family

    def _without_worker(self) -> Metric:
        """Pending tasks of the types no live worker runs: the dispatcher leaves them queued,
        so alert on this rather than wait for a queue that never drains."""
        family = GaugeMetricFamily(
            "conveyor_pending_without_worker",
            "Pending tasks by type, for the types no live worker runs.", labels=["type"],
        )
        snap = self.fleet if self.coordination_up else None
        if snap is not None and self.by_status is not None:
            for task_type, count in unrunnable(self.by_status, snap.workers).items():
                family.add_metric([task_type], count)
        return family

    def _scheduler_duties(self) -> list[Duty]:
        return self._scheduler.duties if self._scheduler is not None else []

    def _worker_duties(self) -> list[Duty]:
        return self._worker.duties if self._worker is not None else []


def _duty_runs(duties: list[Duty]) -> Metric:
    family = GaugeMetricFamily(
        "conveyor_duty_last_run_timestamp_seconds",
        "When each background duty last completed a pass (a stuck duty stops advancing).",
        labels=["duty"],
    )
    for duty in duties:
        if duty.last_run is not None:
            family.add_metric([duty.name], duty.last_run)
    return family


def _counter(name: str, documentation: str, value: float) -> Metric:
    family = CounterMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _attr(obj: object, name: str) -> int:
    """A counter attribute a duty may keep; 0 when this version of the duty does not."""
    value = getattr(obj, name, 0)
    return value if isinstance(value, int) else 0
