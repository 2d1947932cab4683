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
from conveyor.models import (
    Priority,
    Task,
    TaskConfig,
    TaskLog,
    TaskStatus,
    WorkerInfo,
    WorkerRecord,
)

if TYPE_CHECKING:
    from conveyor.store.retention import PurgeTarget, RowArchive


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one attempt ended, as the worker (or a recovering scheduler) reports it.

    ``retry_at`` set means the task goes straight back to PENDING (through ``status``, both
    moves logged) and is due then; ``spend_retry`` is False for attempts lost to a crash.
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


@dataclass(frozen=True, slots=True)
class TaskFilter:
    status: TaskStatus | None = None
    task_type: str | None = None
    created_from: float | None = None
    created_to: float | None = None


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
    """Create tasks and read them back (the API's path)."""

    async def insert(self, tasks: Sequence[Task]) -> list[Created]:
        """Insert new PENDING tasks; a task whose (type, idempotency key) exists yields the
        existing one instead. Order of the result follows the input; a task whose id is
        taken raises ``Conflict``."""

    async def get(self, task_id: str) -> Task | None: ...

    async def get_many(self, task_ids: Sequence[str]) -> list[Task]: ...

    async def list_tasks(self, ask: ListRequest) -> Page:
        """Newest first. The payload and result columns are read only when included, and
        then only for the rows within the budget."""

    async def logs(self, task_id: str) -> list[TaskLog]: ...


class TaskMoves(Protocol):
    """Every change of a task's state after its creation, each one logged."""

    async def start(self, task_ids: Sequence[str], worker_id: str, now: float) -> list[Task]:
        """PENDING → PROCESSING with ``attempt + 1``; returns only the tasks that moved."""

    async def finish(self, outcomes: Sequence[Outcome], now: float) -> list[Task]:
        """Apply each outcome to a PROCESSING task of that attempt; return the tasks that moved
        (their new state), skipping outcomes of superseded attempts."""

    async def cancel_pending(self, task_id: str, now: float, message: str) -> Task | None:
        """PENDING → CANCELLED; None when the task was not PENDING."""

    async def reopen(self, task_id: str, now: float, message: str) -> Task | None:
        """A manual retry: FAILED / TIMEOUT / CANCELLED → PENDING with its retries restored."""

    async def set_priority(self, task_id: str, priority: Priority, now: float) -> Task | None:
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

    async def count_by_status(self) -> dict[tuple[str, str], int]:
        """``{(task_type, status): count}``."""

    async def recent(self, since: float) -> tuple[int, dict[str, int]]:
        """Tasks created since ``since``, and tasks finished since then by final status."""


class TaskConfigs(Protocol):
    """Per-type defaults (``task_config``)."""

    async def get_config(self, task_type: str) -> TaskConfig | None: ...

    async def list_configs(self) -> list[TaskConfig]: ...

    async def put_config(self, config: TaskConfig) -> TaskConfig: ...

    async def delete_config(self, task_type: str) -> bool: ...


class ApiKeys(Protocol):
    async def put_key(self, key: ApiKey) -> None:
        """Store a new key; ``Conflict`` when its id is taken."""

    async def get_key(self, key_id: str) -> ApiKey | None: ...

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: str, now: float) -> bool:
        """Mark the key revoked; False when there is no such (unrevoked) key."""


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
    def retention(self) -> Purges: ...

    @property
    def configs(self) -> TaskConfigs: ...

    @property
    def keys(self) -> ApiKeys: ...

    @property
    def workers(self) -> WorkerRecords: ...

    @property
    def epochs(self) -> Epochs: ...

    async def migrate(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...
