"""Retention: the leader deletes finished rows once they are older than their setting.

What goes (``purge_targets``): a task that ended SUCCESS once ``retention.succeeded`` has
passed since it finished, one in any other final status (FAILED, TIMEOUT, CANCELLED) after
``retention.failed``, each with its ``task_logs`` in the same transaction; any log row older
than ``retention.logs``, even of a task that is kept. PENDING and PROCESSING tasks are never
deleted, however old; audit rows once ``retention.audit`` has passed; schedule fire history
rows ``retention.schedule_fires`` after they were recorded, one target per outcome but
BUFFERED (a buffered fire is still to fire, and its schedule counts it), by the composite key
of ``schedule_fires``; workflow rows with their node rows once ``retention.workflows`` has
passed since they were created and since each of their tasks ended (or was purged). A setting
of 0 keeps those rows forever. Tables other features add are more ``PurgeTarget``s in the
same list; ``final_targets`` maps a table's final
statuses onto the two task settings.

A pass deletes, per target, batches of at most ``batch_size`` rows (each its own short
transaction, see ``store.retention``) and at most ``batches_per_pass`` of them; a pass that hit
the cap comes back a second later instead of after ``interval``, so a large backlog drains in
steps that never hold locks for long. Only the leader purges (every batch checks its epoch);
two schedulers purging at once would only find each other's rows gone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import sqlalchemy as sa

from conveyor.config import RetentionSettings
from conveyor.errors import ArchiveFailed
from conveyor.models import FINAL_STATUSES, TaskStatus
from conveyor.scheduler.elector import Elector
from conveyor.scheduler.paging import CatchingUp
from conveyor.schedules.model import FireOutcome
from conveyor.store.protocol import Purges
from conveyor.store.retention import Child, PurgeTarget, RowArchive
from conveyor.store.schema import (
    audit_log,
    schedule_fires,
    task,
    task_deps,
    task_logs,
    workflow_nodes,
    workflows,
)

log = logging.getLogger(__name__)


def keep_for(status: str, settings: RetentionSettings) -> float:
    """How long a row that ended in ``status`` is kept: SUCCESS by ``succeeded``, every other
    final status by ``failed``."""
    return settings.succeeded if status == TaskStatus.SUCCESS else settings.failed


def final_targets(
    table: sa.Table, settings: RetentionSettings, *, time_column: str = "finished_at",
    status_column: str = "status", statuses: Iterable[str] = FINAL_STATUSES,
    children: Sequence[Child] = (),
) -> list[PurgeTarget]:
    """One target per final status of ``table``, kept as ``keep_for`` says."""
    return [
        PurgeTarget(table, time_column, keep_for(s, settings), status_column=status_column,
                    status=str(s), children=tuple(children))
        for s in sorted(statuses)
    ]


def purge_targets(settings: RetentionSettings) -> list[PurgeTarget]:
    """Everything retention purges, tasks first so most logs go with their task, and a
    task's edges to its parents with it (a child's edges are read only while it waits)."""
    children = [Child(task_logs, "task_id"), Child(task_deps, "child_id")]
    return [
        *final_targets(task, settings, children=children),
        PurgeTarget(task_logs, "at", settings.logs),
        PurgeTarget(audit_log, "at", settings.audit),
        *fire_targets(settings),
        workflow_target(settings),
    ]


def workflow_target(settings: RetentionSettings) -> PurgeTarget:
    """A workflow row (and its node rows) once ``retention.workflows`` has passed since it
    was created and since every node's task ended, or was purged: a workflow with a node not
    final, or one that ended more recently, is kept; its edges go with the tasks."""
    keep = settings.workflows

    def kept(now: float) -> sa.ColumnElement[bool]:
        live = sa.or_(task.c.status.notin_([str(s) for s in FINAL_STATUSES]),
                      task.c.finished_at >= now - keep)
        return sa.exists().where(workflow_nodes.c.workflow_id == workflows.c.id,
                                 task.c.id == workflow_nodes.c.task_id, live)

    return PurgeTarget(workflows, "created_at", keep,
                       children=(Child(workflow_nodes, "workflow_id"),), kept=kept)


def fire_targets(settings: RetentionSettings) -> list[PurgeTarget]:
    """Recorded fires by outcome, through ``ix_schedule_fires_outcome_recorded``; never a
    buffered one. A purged fire's task keeps its idempotency key, so a backfill over a purged
    range creates no second task while that task is kept."""
    key = tuple(c.name for c in schedule_fires.primary_key)
    return [
        PurgeTarget(schedule_fires, "recorded_at", settings.schedule_fires, key=key,
                    status_column="outcome", status=str(o))
        for o in FireOutcome if o != FireOutcome.BUFFERED
    ]


class Retention(CatchingUp):
    name = "retention"

    def __init__(
        self, purges: Purges, elector: Elector, targets: Sequence[PurgeTarget], *,
        interval: float, batch: int, batches_per_pass: int, archive: RowArchive | None = None,
    ) -> None:
        super().__init__(interval)
        self._purges, self._elector, self._archive = purges, elector, archive
        self._targets = [t for t in targets if t.enabled]
        self._batch, self._batches_per_pass = batch, batches_per_pass
        self.behind = False  # the last pass stopped at its cap with rows left
        self.removed: dict[str, int] = {}  # rows deleted per table, since start
        self.archive_failures = 0

    async def run_once(self, now: float) -> None:
        if self._elector.epoch is None:
            return
        counts: dict[str, int] = {}
        self.behind = False
        for target in self._targets:
            if not await self._purge(target, now, counts):
                break
        for table, n in counts.items():
            self.removed[table] = self.removed.get(table, 0) + n
        if any(counts.values()):
            log.info("retention removed %s", ", ".join(
                f"{n} {table}" for table, n in sorted(counts.items())))

    async def _purge(self, target: PurgeTarget, now: float, counts: dict[str, int]) -> bool:
        """Up to ``batches_per_pass`` batches of one target; False once leadership is lost."""
        for _ in range(self._batches_per_pass):
            if self._elector.epoch is None:
                return False
            keys = await self._purges.expired(target, now, self._batch)
            if keys:
                try:
                    removed = await self._purges.purge(target, keys, now, self._archive)
                except ArchiveFailed as exc:  # the batch was not kept, so none of it was deleted
                    log.error("retention: archiving %s failed (%s); nothing of it was deleted, "
                              "retrying next pass", target.label, exc)
                    self.archive_failures += 1
                    return False
                for table, n in removed.items():
                    counts[table] = counts.get(table, 0) + n
            if len(keys) < self._batch:
                return True
        self.behind = True
        return True
