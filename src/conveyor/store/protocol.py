"""The store contract: the durable record of tasks, their logs, type configs and workers.

Batch-first: the hot path (create, start, finish) takes many tasks per call so one transaction
covers a batch. Every state move is a conditional write (``WHERE id = ? AND status = ? AND
attempt = ?``) plus a ``task_logs`` row in the same transaction; a move whose condition no
longer holds is skipped, never forced.

The contract is cut by who needs what, so a component can ask for the one part it uses: the
hot path (``TaskRecords`` to create and read, ``TaskMoves`` to change state) is apart from the
scheduler's scans (``Sweeps``), the operator's aggregates (``TaskStats``) and the small tables
that have nothing to do with a task's life (configs, API keys, workers, epochs). ``TaskStore``
is the whole: one attribute per part, plus what belongs to the database itself.

No driver exception leaves the store: a database that cannot be reached is
``BackendUnavailable`` (callers retry), a write the data refuses is ``Conflict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from conveyor.apikeys import ApiKey
from conveyor.audit import AuditEntry, AuditPage, AuditQuery
from conveyor.models import (
    Priority,
    Task,
    TaskConfig,
    TaskLog,
    TaskStatus,
    TenantLimits,
    WorkerInfo,
    WorkerRecord,
)
from conveyor.schedules.model import Fire, Schedule
from conveyor.tenants import DEFAULT_TENANT

if TYPE_CHECKING:
    from conveyor.store.deps import Settled
    from conveyor.store.retention import PurgeTarget, RowArchive
    from conveyor.store.workflows import WorkflowCancel
    from conveyor.workflows import Workflow


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, as the worker (or a recovering scheduler) reports it.

    ``retry_at`` set means the task goes straight back to PENDING (through ``status``, both
    moves logged) and is due then; ``spend_retry`` is False for attempts lost to a crash.

    ``task`` is the row as the reporter last read it (a worker: as its start returned it),
    when it has one: the finish then writes without reading the row again, its UPDATE fenced
    on that copy's ``version`` (any move since bumped it, so a stale copy changes nothing).
    Without it, the finish reads the row first.
    """

    task_id: str
    attempt: int
    status: TaskStatus
    result: Any = None
    error: str | None = None
    retry_at: float | None = None
    spend_retry: bool = True
    message: str = ""
    worker_id: str | None = None
    epoch: int | None = None
    task: Task | None = None


class Finished(list[Task]):
    """The tasks a finish moved, as a list, plus the WAITING children their final moves
    released in the same transaction (``released``: to place on their queues after the
    commit, like retries; docs/design.md §10)."""

    def __init__(self, moved: Sequence[Task] = (), released: Sequence[Task] = ()) -> None:
        super().__init__(moved)
        self.released = list(released)


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """``tenant`` None spans every tenant (a superadmin, or no authentication).

    ``idempotency_key`` needs ``task_type`` (keys are unique per tenant and type, and found
    through that unique index). ``metadata`` (key, value) has no index: a page looks for it
    among the next ``METADATA_WINDOW`` tasks the other filters select, newest first, so each
    page reads a bounded number of rows and its cursor goes on past the window.
    """

    tenant: str | None = None
    status: TaskStatus | None = None
    task_type: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    idempotency_key: str | None = None
    metadata: tuple[str, str] | None = None


METADATA_WINDOW = 5_000  # tasks one page of a metadata search reads at most
BIG_FIELDS = frozenset({"payload", "result"})  # what a list leaves out unless asked for


@dataclass(frozen=True, slots=True)
class ListRequest:
    """One page of a task list: up to ``limit`` rows after ``cursor``, with the ``include``d
    big fields (a subset of ``BIG_FIELDS``) read for as many rows as fit in ``budget`` bytes
    of their stored JSON. A first row over the budget still comes, alone, so every row can
    be reached by following cursors."""

    where: TaskFilter
    cursor: str | None
    limit: int
    include: frozenset[str] = frozenset()
    budget: int = 8 * 1_048_576


@dataclass(frozen=True, slots=True)
class Page:
    """``tasks`` hold only the summary columns plus the ``include``d big fields; a big field
    not included holds a placeholder (``{}`` / ``None``) that must not be shown as data."""

    tasks: list[Task]
    next_cursor: str | None
    include: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Created:
    task: Task
    created: bool  # False when an idempotency key matched an existing task


class TaskRecords(Protocol):
    """Create tasks and read them back (the API's path).

    Every read takes the caller's ``tenant`` (None: all tenants) and filters by it in SQL: a
    task of another tenant is not found, exactly like a task that does not exist."""

    async def insert(self, tasks: Sequence[Task]) -> list[Created]:
        """Insert new PENDING tasks; a task whose (tenant, type, idempotency key) exists
        yields the existing one instead. Order of the result follows the input; a task whose
        id is taken raises ``Conflict``."""

    async def get(self, task_id: str, tenant: str | None = None) -> Task | None: ...

    async def get_many(
        self, task_ids: Sequence[str], tenant: str | None = None
    ) -> list[Task]: ...

    async def list_tasks(self, ask: ListRequest) -> Page:
        """Newest first, within ``ask.where.tenant``. The payload and result columns are read
        only when included, and then only for the rows within the budget."""

    async def logs(self, task_id: str, tenant: str | None = None) -> list[TaskLog]: ...


class TaskMoves(Protocol):
    """Every change of a task's state after its creation, each one logged."""

    async def start(self, task_ids: Sequence[str], worker_id: str, now: float) -> list[Task]:
        """PENDING → PROCESSING with ``attempt + 1``; returns only the tasks that moved."""

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> Finished:
        """Apply each outcome to a PROCESSING task of that attempt; return the tasks that moved
        (their new state), skipping outcomes of superseded attempts, and in ``released`` the
        children their final moves released."""

    async def cancel_pending(
        self, task_id: str, now: float, message: str, *, tenant: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        """PENDING → CANCELLED; None when the task was not PENDING (or not of ``tenant``).
        ``audit``, when given, is written in the same transaction as the move, and only if it
        applied (so for the two methods below)."""

    async def reopen(
        self, task_id: str, now: float, message: str, *, tenant: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        """A manual retry: FAILED / TIMEOUT / CANCELLED → PENDING with its retries restored."""

    async def set_priority(
        self, task_id: str, priority: Priority, now: float, *, tenant: str | None = None,
        audit: AuditEntry | None = None,
    ) -> Task | None:
        """Change the priority of a PENDING task; None when it is not PENDING."""


class Sweeps(Protocol):
    """The scans that find tasks nobody is looking after (timeouts, dead workers, orphans)."""

    async def overdue(self, now: float, grace: float, limit: int) -> list[Task]:
        """PROCESSING tasks whose deadline (started_at + timeout + grace) has passed."""

    async def processing_on(self, worker_id: str) -> list[Task]: ...

    async def pending_page(
        self, after_id: str | None, created_before: float, limit: int
    ) -> list[Task]:
        """PENDING tasks in id order, for the orphan sweep."""


class Purges(Protocol):
    """Retention's queries (``store.retention``): expired rows found by index, deleted in
    short transactions with their children."""

    async def expired(self, target: PurgeTarget, now: float, limit: int) -> list[Any]:
        """Keys of up to ``limit`` rows of ``target`` expired at ``now``, oldest first."""

    async def purge(
        self, target: PurgeTarget, keys: Sequence[Any], now: float,
        archive: RowArchive | None = None,
    ) -> dict[str, int]:
        """Delete those of ``keys`` still expired, with their children, in one transaction,
        after ``archive`` kept them; rows deleted per table."""


class TaskStats(Protocol):
    """Aggregates over the task table, for the stats endpoint and the metrics."""

    async def count_by_status(self, tenant: str | None = None) -> dict[tuple[str, str], int]:
        """``{(task_type, status): count}`` of one tenant's tasks (None: every tenant's)."""

    async def count_pending_by_priority(self, tenant: str | None = None) -> dict[str, int]:
        """PENDING tasks by priority label (queued or waiting to be due)."""

    async def recent(
        self, since: float, tenant: str | None = None
    ) -> tuple[int, dict[str, int]]:
        """Tasks created since ``since``, and tasks finished since then by final status."""


@dataclass(frozen=True, slots=True)
class Pending:
    """PENDING rows of one (type, priority) among the scanned ones."""

    task_type: str
    priority: str  # label
    count: int
    oldest_due: float  # run_at of the one due longest


@dataclass(frozen=True, slots=True)
class Timing:
    """One finished task's last attempt: how long it waited once due, and how long it ran."""

    wait: float
    run: float


class Glance(Protocol):
    """The console overview's numbers, each read with a bound (``store.glance``)."""

    async def counts(self, cap: int, tenant: str | None = None) -> dict[str, int]:
        """Tasks per state; ``cap + 1`` stands for "more than ``cap``"."""

    async def pending(self, now: float, scan: int, tenant: str | None = None) -> list[Pending]:
        """The ``scan`` PENDING rows due longest, by (type, priority)."""

    async def timings(self, sample: int, tenant: str | None = None) -> list[Timing]:
        """Queue wait and run time of the ``sample`` tasks that finished last."""

    async def moves(self, since: float, tenant: str | None = None) -> tuple[int, int]:
        """Attempts started and retries since ``since``."""


class TaskConfigs(Protocol):
    """Per-type defaults (``task_config``), one row per (tenant, type)."""

    async def get_config(
        self, task_type: str, tenant: str = DEFAULT_TENANT
    ) -> TaskConfig | None: ...

    async def list_configs(self, tenant: str | None = None) -> list[TaskConfig]:
        """One tenant's configs, or every tenant's (None), by tenant and type."""

    async def put_config(
        self, config: TaskConfig, *, audit: AuditEntry | None = None
    ) -> TaskConfig:
        """Create or replace the config of ``(config.tenant, config.task_type)``; ``audit``
        gets the config before (None if new) and after, in the write's transaction."""

    async def delete_config(
        self, task_type: str, tenant: str = DEFAULT_TENANT, *, audit: AuditEntry | None = None
    ) -> bool: ...


class ApiKeys(Protocol):
    async def put_key(self, key: ApiKey, *, audit: AuditEntry | None = None) -> None:
        """Store a new key; ``Conflict`` when its id is taken."""

    async def get_key(self, key_id: str) -> ApiKey | None:
        """By id alone: authentication, before the caller's tenant is known."""

    async def list_keys(self, tenant: str | None = None) -> list[ApiKey]: ...

    async def revoke_key(
        self, key_id: str, now: float, tenant: str | None = None, *,
        audit: AuditEntry | None = None,
    ) -> bool:
        """Mark the key revoked; False when there is no such (unrevoked) key in ``tenant``."""


class TenantLimitRecords(Protocol):
    """Per-tenant dispatch weights and create quotas (``tenant_limits``)."""

    async def put_limits(
        self, limits: TenantLimits, *, audit: AuditEntry | None = None
    ) -> TenantLimits:
        """Insert or replace; ``audit`` (with before / after) commits with the change."""

    async def get_limits(self, tenant: str) -> TenantLimits | None: ...

    async def list_limits(self) -> list[TenantLimits]: ...

    async def delete_limits(self, tenant: str, *, audit: AuditEntry | None = None) -> bool: ...

    async def count_pending(self, tenant: str) -> int:
        """How many PENDING tasks the tenant has (its ``max_pending`` quota)."""


class WorkerRecords(Protocol):
    """The durable record of workers (``worker_registry``), beside the live registry."""

    async def record_workers(self, workers: Sequence[WorkerInfo], state: str, now: float) -> None:
        """Upsert the durable record of workers seen (first seen kept, last heartbeat moved)."""

    async def mark_worker(self, worker_id: str, state: str, now: float) -> None: ...

    async def stale_processing_workers(self, cutoff: float) -> list[str]:
        """Workers holding PROCESSING tasks whose last recorded heartbeat is older than
        ``cutoff``, or that were marked stopped or dead, or were never recorded."""

    async def list_worker_records(self) -> list[WorkerRecord]:
        """Every worker ever recorded, by id."""


class Epochs(Protocol):
    """The store's durable record of scheduler epochs (the floor for new leases)."""

    async def max_epoch(self) -> int:
        """The highest scheduler epoch ever recorded (leases taken, rows written; 0 when
        none)."""

    async def record_epoch(self, epoch: int, holder: str, now: float) -> None:
        """Record a new lease before acting under it; raises ``Conflict`` if the epoch was
        already handed out (the coordination backend lost its counter)."""


class AuditLog(Protocol):
    """The audit log; rows of SQL changes are written by the store method that makes the
    change (its ``audit=`` parameter), this part writes the others and reads them all."""

    async def write(self, entry: AuditEntry, at: float, *, tenant: str | None = None) -> None:
        """One row in a transaction of its own (an action that changed no SQL row)."""

    async def list_entries(self, query: AuditQuery, tenant: str | None) -> AuditPage:
        """Newest first, filtered in SQL; ``tenant`` None spans every tenant."""
@dataclass(frozen=True, slots=True)
class FireWrite:
    """One schedule's share of a firing transaction: the fires to record, each FIRED one with
    its task, and (``advance``) the schedule's new ``next_fire_at``, applied only if the row
    still has the version it was read with. A fire already recorded is left as it is (and its
    task is not created again); a BUFFERED one recorded earlier may become FIRED."""

    schedule: Schedule
    fires: Sequence[tuple[Fire, Task | None]]
    next_fire_at: float | None = None
    advance: bool = True


@dataclass(frozen=True, slots=True)
class FireResult:
    created: list[Task]            # new tasks, to be placed on their queues
    recorded: list[Fire]           # fire rows written (or released from BUFFERED)
    stale: list[Schedule]          # changed since they were read: nothing of theirs written


class Schedules(Protocol):
    """Schedules and their fire history (docs/design.md §9); every read and write names the
    tenant, except the leader's, which spans tenants."""

    async def put(self, schedule: Schedule, *, audit: AuditEntry | None = None) -> None:
        """Create or replace the definition; firing state is kept on a replace. ``audit``
        gets the definition before (None if new) and after, in the write's transaction."""

    async def get(self, tenant: str, name: str) -> Schedule | None: ...

    async def list_schedules(self, tenant: str | None) -> list[Schedule]:
        """By name; ``None``: every tenant (the code sync)."""

    async def delete(
        self, tenant: str, name: str, *, audit: AuditEntry | None = None
    ) -> bool:
        """The schedule and its history; ``audit`` recorded only when there was one."""

    async def set_paused(
        self, tenant: str, name: str, paused: bool, next_fire_at: float | None, now: float,
        *, audit: AuditEntry | None = None,
    ) -> Schedule | None: ...

    async def due(self, now: float, limit: int) -> list[Schedule]:
        """Unpaused schedules whose ``next_fire_at`` ≤ now, soonest first (by index)."""

    async def with_buffered(self, limit: int) -> list[Schedule]: ...

    async def next_due(self) -> float | None:
        """The soonest ``next_fire_at`` of all, or None (by index)."""

    async def buffered_fires(self, schedule: Schedule, limit: int) -> list[Fire]: ...

    async def fire(
        self, writes: Sequence[FireWrite], now: float, *, audit: AuditEntry | None = None
    ) -> FireResult:
        """One transaction for the whole batch: tasks, fire rows and schedule moves; ``audit``
        (an operator's trigger or backfill of one schedule) records what was fired, in it."""

    async def fires(
        self, tenant: str, name: str, limit: int, before: float | None = None
    ) -> list[Fire]:
        """History, newest fire first."""


class Dependencies(Protocol):
    """WAITING tasks the release sweep settles (docs/design.md §10)."""

    async def release_waiting(
        self, after_id: str | None, older_than: float, limit: int, now: float
    ) -> tuple[str | None, Settled]:
        """One page after ``after_id``: the last id seen (None: none left) and what it
        released and cancelled."""


class Waits(Protocol):
    """WAITING tasks past their wait deadline (``wait_timeout_seconds``)."""

    async def expire_waits(self, now: float, limit: int, epoch: int) -> Settled:
        """Cancel up to ``limit`` of them in one transaction, their log rows fenced by
        ``epoch``; what they released (policy ``run``) and cancelled, themselves included."""


class Pins(Protocol):
    """PENDING broadcast copies pinned to a worker (``task.pinned_worker``)."""

    async def pinned_workers(self) -> set[str]: ...

    async def cancel_pinned(
        self, worker_ids: Sequence[str], now: float, limit: int, epoch: int
    ) -> Settled:
        """Cancel up to ``limit`` of the copies of ``worker_ids`` in one transaction."""


class WorkflowRecords(Protocol):
    """Workflows and their nodes (docs/design.md §10), filtered by tenant in SQL."""

    async def create(self, flow: Workflow, tasks: Sequence[Task], now: float) -> list[Task]:
        """Every node's task, its edges and the workflow's rows in one transaction."""

    async def get(self, workflow_id: str, tenant: str | None) -> Workflow | None: ...

    async def node_states(self, workflow_id: str) -> dict[str, TaskStatus]: ...

    async def edges(self, flow: Workflow) -> dict[str, list[str]]:
        """Node → the nodes of ``flow`` it runs after."""

    async def list_workflows(
        self, tenant: str | None, name: str | None, cursor: str | None, limit: int
    ) -> list[Workflow]: ...

    async def cancel(
        self, flow: Workflow, now: float, audit: AuditEntry | None
    ) -> WorkflowCancel: ...

    async def retry(self, flow: Workflow, now: float, audit: AuditEntry | None) -> list[Task]:
        """Reopen failed and cancelled nodes; returns the ones now PENDING."""


class TaskStore(Protocol):
    """The whole store. The parts are read-only properties so an implementation may hold
    more specific types than the protocols name."""

    @property
    def tasks(self) -> TaskRecords: ...

    @property
    def moves(self) -> TaskMoves: ...

    @property
    def sweeps(self) -> Sweeps: ...

    @property
    def stats(self) -> TaskStats: ...

    @property
    def glance(self) -> Glance: ...

    @property
    def retention(self) -> Purges: ...

    @property
    def configs(self) -> TaskConfigs: ...

    @property
    def keys(self) -> ApiKeys: ...

    @property
    def workers(self) -> WorkerRecords: ...

    @property
    def tenant_limits(self) -> TenantLimitRecords: ...

    @property
    def epochs(self) -> Epochs: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def schedules(self) -> Schedules: ...

    @property
    def deps(self) -> Dependencies: ...

    @property
    def waits(self) -> Waits: ...

    @property
    def pins(self) -> Pins: ...

    @property
    def workflows(self) -> WorkflowRecords: ...

    async def migrate(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...
