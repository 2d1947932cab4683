"""The task model, its state machine (docs/design.md §2) and the values the scheduler places: queue
items, worker descriptions and the leader lease. Pure: no I/O, no clock.

Allowed moves::

    PENDING ──► PROCESSING ──► SUCCESS
       ▲            ├──► FAILED  ──(retries left)──► PENDING
       │            ├──► TIMEOUT ──(retries left)──► PENDING
       │            └──► CANCELLED
       └── a manual retry of FAILED / TIMEOUT / CANCELLED
    PENDING ──► CANCELLED
    WAITING ──► PENDING        (every parent succeeded, or ended with on_parent_failure "run")
    WAITING ──► CANCELLED      (a parent failed for good, a cancel, a wait timeout)
    CANCELLED ──► WAITING      (a workflow retry reopens a cancelled descendant)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple

from conveyor.errors import IllegalTransition, ValidationError
from conveyor.tenants import DEFAULT_TENANT

TASK_TYPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")


class TaskStatus(StrEnum):
    WAITING = "WAITING"  # has parents (docs/design.md §10) that have not all ended yet
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        """True once the system will not move the task again on its own."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED}
)

ALLOWED_MOVES: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.WAITING: frozenset({TaskStatus.PENDING, TaskStatus.CANCELLED}),
    TaskStatus.PENDING: frozenset({TaskStatus.PROCESSING, TaskStatus.CANCELLED}),
    TaskStatus.PROCESSING: frozenset(
        {TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED}
    ),
    TaskStatus.SUCCESS: frozenset(),
    TaskStatus.FAILED: frozenset({TaskStatus.PENDING}),
    TaskStatus.TIMEOUT: frozenset({TaskStatus.PENDING}),
    TaskStatus.CANCELLED: frozenset({TaskStatus.PENDING, TaskStatus.WAITING}),
}


def check_move(source: TaskStatus, target: TaskStatus) -> None:
    """Raise ``IllegalTransition`` unless ``source → target`` is an edge of the state machine."""
    if target not in ALLOWED_MOVES[source]:
        raise IllegalTransition(f"a task cannot move from {source} to {target}")


class Priority(IntEnum):
    LOW = 0
    NORMAL = 1
    HIGH = 2

    @classmethod
    def parse(cls, value: object) -> Priority:
        """Accept ``high``/``normal``/``low`` (any case) or 2/1/0, as the seeds' examples do."""
        if isinstance(value, Priority):
            return value
        if isinstance(value, bool):
            raise ValidationError(f"priority must be high, normal, low or 2, 1, 0; got {value!r}")
        if isinstance(value, int) and value in (0, 1, 2):
            return cls(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text.isdigit() and int(text) in (0, 1, 2):
                return cls(int(text))
            for member in cls:
                if member.name.lower() == text:
                    return member
        raise ValidationError(f"priority must be high, normal, low or 2, 1, 0; got {value!r}")

    @property
    def label(self) -> str:
        return self.name.lower()


def check_task_type(task_type: str) -> str:
    """Task types end up in Redis keys and metric labels, so they are kept to a safe alphabet."""
    if not isinstance(task_type, str) or not TASK_TYPE_PATTERN.fullmatch(task_type):
        raise ValidationError(
            f"task_type {task_type!r} must match {TASK_TYPE_PATTERN.pattern} "
            "(letters, digits, '_', '.', ':', '-'; at most 128 characters)"
        )
    return task_type


PARENT_POLICIES = ("cancel", "run")


@dataclass(frozen=True, slots=True)
class Input:
    """A payload key filled at release from parents' results: ``parent`` (a task id) or, for a
    fan-in, every parent in order (``parent`` None: the key gets the list); ``path`` is the
    dotted path into each result ("" for the whole result)."""

    key: str
    parent: str | None
    path: str = ""


@dataclass(frozen=True, slots=True)
class Task:
    """One row of the ``task`` table."""

    id: str
    task_type: str
    priority: Priority
    payload: dict[str, Any]
    status: TaskStatus
    max_retries: int
    timeout: float
    created_at: float
    run_at: float
    metadata: dict[str, str] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    retry_count: int = 0
    attempt: int = 0
    worker_id: str | None = None
    idempotency_key: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    version: int = 0
    callback_url: str | None = None
    owner: str | None = None  # id of the API key that created it
    tenant: str = DEFAULT_TENANT
    # A WAITING task still waiting at this time is cancelled (``wait_timeout_seconds``).
    wait_deadline: float | None = None
    # A broadcast copy runs on this worker only, and is cancelled once the worker is gone.
    pinned_worker: str | None = None
    # Dependencies (docs/design.md §10), written to ``task_deps`` on insert, not read back
    # with the row: parent ids in order, the policy when one fails for good, and the payload
    # keys that get parents' results at release.
    parents: tuple[str, ...] = ()
    on_parent_failure: str = "cancel"
    inputs: tuple[Input, ...] = ()

    @property
    def retries_left(self) -> bool:
        return self.retry_count < self.max_retries


@dataclass(frozen=True, slots=True)
class TaskLog:
    """One row of ``task_logs``: a state move and why it happened."""

    task_id: str
    attempt: int
    from_status: TaskStatus | None
    to_status: TaskStatus
    at: float
    message: str = ""
    worker_id: str | None = None
    epoch: int | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff settings: delay = min(cap, base * factor**n) ± jitter fraction."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    jitter: float = 0.2


@dataclass(frozen=True, slots=True)
class TaskConfig:
    """Defaults for one task type (the ``task_config`` table)."""

    task_type: str
    executor: str = "python"
    executor_config: dict[str, Any] = field(default_factory=dict)
    timeout: float | None = None
    max_retries: int | None = None
    priority: Priority | None = None
    backoff: Backoff | None = None
    concurrency_limit: int | None = None
    rate_limit: float | None = None
    enabled: bool = True
    updated_at: float = 0.0
    tenant: str = DEFAULT_TENANT  # a config applies to its tenant's tasks only


# -- what the scheduler places and on whom ------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueItem:
    """A queue entry: the task id plus the facts the scheduler needs to place it without a
    database read (its type, to find a worker that runs it; its priority, to hand it back to
    the right queue; its tenant, to take turns between tenants within a priority).

    The encoding is ``task_id|task_type|priority`` for the default tenant, as it was before
    tenants existed, and ``task_id|task_type|priority|tenant`` otherwise; an item pinned to one
    worker (a broadcast copy) adds ``|worker`` after the tenant field (empty for the default
    tenant). Keeping the default
    tenant's form unchanged means items queued before the upgrade are byte for byte the items
    the new code builds, so every exact-member operation (assign, remove, the ``queued``
    index, the delayed set) still finds them and old queues drain.
    """

    task_id: str
    task_type: str
    priority: Priority
    tenant: str = DEFAULT_TENANT
    worker: str = ""  # a broadcast copy runs on this worker only ("": any)

    def encode(self) -> str:
        base = f"{self.task_id}|{self.task_type}|{int(self.priority)}"
        if self.worker:
            return f"{base}|{tenant_field(self.tenant)}|{self.worker}"
        return base if self.tenant == DEFAULT_TENANT else f"{base}|{self.tenant}"

    @classmethod
    def decode(cls, raw: str | bytes) -> QueueItem:
        text = raw.decode() if isinstance(raw, bytes) else raw
        task_id, task_type, priority, *rest = text.split("|")
        tenant = rest[0] if rest and rest[0] else DEFAULT_TENANT
        return cls(task_id, task_type, Priority(int(priority)), tenant,
                   rest[1] if len(rest) > 1 else "")


def tenant_field(tenant: str) -> str:
    """How a tenant is named inside the queue layout (Redis ring entries, Lua arguments): the
    default tenant as the empty string, matching its encoding without a fourth field."""
    return "" if tenant == DEFAULT_TENANT else tenant


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """A tenant's share of dispatch and its quotas on create (``tenant_limits``); a tenant
    without a row has these defaults: weight 1, no quota."""

    tenant: str
    weight: int = 1
    max_pending: int | None = None  # PENDING tasks at most; None: unlimited
    creates_per_second: float | None = None  # token bucket on create; None: unlimited
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """What a worker advertises; ``load`` is filled in by ``Registry.live_workers``."""

    worker_id: str
    host: str
    pid: int
    capacity: int
    types: tuple[str, ...] = ()
    weight: float = 1.0
    started_at: float = 0.0
    last_heartbeat: float = 0.0
    load: int = 0
    draining: bool = False
    prefetch: int = 0

    def supports(self, task_type: str) -> bool:
        """A worker with no declared types runs every type it has an executor for."""
        return not self.types or task_type in self.types

    @property
    def free(self) -> int:
        """Slots the dispatcher may still fill: running capacity plus a prefetch buffer, so
        the next tasks already wait in the worker's queue when a slot frees up."""
        return 0 if self.draining else max(0, self.capacity + self.prefetch - self.load)


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker as the durable ``worker_registry`` remembers it, live or long gone: what the
    live registry forgets when a heartbeat key expires."""

    worker_id: str
    host: str
    pid: int
    capacity: int
    types: tuple[str, ...]
    state: str  # alive, stopped (clean exit) or dead (reaped)
    first_seen: float
    last_heartbeat: float
    state_changed_at: float | None  # None for a worker last changed before this was recorded


class Lease(NamedTuple):
    """The scheduler lease: who holds it, under which fencing epoch."""

    holder: str
    epoch: int
