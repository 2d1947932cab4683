"""Request and response bodies of the REST API (they are also the OpenAPI schema)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from conveyor.dependencies import MAX_PARENTS, MAX_WAIT
from conveyor.errors import ConfigError, ValidationError
from conveyor.executors.secret_fields import secret_fields
from conveyor.models import Backoff, Priority, Task, TaskConfig, TaskLog
from conveyor.sealing import MASK, redact
from conveyor.service import MAX_BATCH, MAX_DELAY, TaskRequest
from conveyor.store.protocol import BIG_FIELDS
from conveyor.tenants import DEFAULT_TENANT

PriorityIn = Annotated[
    StrictStr | StrictInt | None,  # strict: JSON true must not slip in as priority 1
    Field(description="high, normal, low, or 2, 1, 0", examples=["high", 1]),
]
_STRICT = ConfigDict(extra="forbid")


def iso(ts: float | None) -> str | None:
    return None if ts is None else _iso(ts)


@functools.lru_cache(maxsize=1024)
def _iso(ts: float) -> str:
    """Cached: the tasks of one create share their ``created_at`` and ``run_at``, and a page
    of a list shares many times too."""
    return datetime.fromtimestamp(ts, UTC).isoformat()


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)


def utc_seconds(when: datetime | None, name: str) -> float | None:
    """Seconds since the epoch of a time given in a request; a time without an offset is UTC,
    the same in every field (``run_at``, ``created_from``, ``created_to``), whatever the
    server's time zone. Times before 1970 are refused: no task was created or runs then."""
    if when is None:
        return None
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    if aware < EARLIEST:
        raise ValidationError(f"{name}: {when.isoformat()} is before 1970-01-01T00:00:00Z")
    return aware.timestamp()


def parse_priority(value: str | int | None) -> Priority | None:
    return None if value is None else Priority.parse(value)


class TaskCreate(BaseModel):
    model_config = _STRICT

    task_type: str = Field(min_length=1, max_length=128, examples=["echo"])
    payload: dict[str, Any] = Field(default_factory=dict, examples=[{"x": 1}])
    priority: PriorityIn = None
    timeout_seconds: float | None = Field(None, gt=0, le=7 * 86_400)
    max_retries: int | None = Field(None, ge=0, le=100)
    delay_seconds: float | None = Field(None, ge=0, le=MAX_DELAY)
    run_at: datetime | None = Field(
        None, description="ISO 8601, not before this time; without an offset it is UTC")
    idempotency_key: str | None = Field(None, min_length=1, max_length=255)
    metadata: dict[str, str] = Field(default_factory=dict)
    callback_url: str | None = Field(None, max_length=2048, pattern=r"^https?://")
    depends_on: list[str] = Field(
        default_factory=list, max_length=MAX_PARENTS,
        description="parent task ids: the task is WAITING until every one succeeded")
    on_parent_failure: Literal["cancel", "run"] = Field(
        "cancel", description="a parent failed for good: cancel this task, or run it anyway")
    inputs: dict[str, str] = Field(
        default_factory=dict, examples=[{"image": "PARENT_ID.result.path"}],
        description="payload keys set at release from a parent's result; '*.result' gives "
                    "the list of every parent's result, in depends_on order")
    wait_timeout_seconds: float | None = Field(
        None, gt=0, le=MAX_WAIT,
        description="a task still WAITING this long after its create is CANCELLED")

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str | int | None) -> str | int | None:
        parse_priority(value)
        return value

    def to_spec(self, depends_on: Sequence[str] | None = None) -> TaskRequest:
        return TaskRequest(
            task_type=self.task_type, payload=self.payload,
            priority=parse_priority(self.priority), timeout=self.timeout_seconds,
            max_retries=self.max_retries, delay=self.delay_seconds,
            run_at=utc_seconds(self.run_at, "run_at"),
            idempotency_key=self.idempotency_key, metadata=self.metadata,
            callback_url=self.callback_url,
            depends_on=tuple(self.depends_on if depends_on is None else depends_on),
            on_parent_failure=self.on_parent_failure, inputs=self.inputs,
            wait_timeout=self.wait_timeout_seconds,
        )


class BatchCreate(BaseModel):
    model_config = _STRICT

    tasks: list[TaskCreate] = Field(min_length=1, max_length=MAX_BATCH)


class TaskSummaryOut(BaseModel):
    """A task as a list shows it: ``payload`` and ``result`` only when asked for with
    ``include=payload,result`` (and then within the list's byte budget)."""

    task_id: str
    task_type: str
    status: str
    priority: str
    payload: dict[str, Any] | None = Field(None, description="only with include=payload")
    result: Any = Field(None, description="only with include=result")
    error: str | None = None
    metadata: dict[str, str]
    attempt: int
    retry_count: int
    max_retries: int
    timeout_seconds: float
    worker_id: str | None = None
    idempotency_key: str | None = None
    created_at: str | None
    run_at: str | None
    started_at: str | None = None
    finished_at: str | None = None
    wait_deadline: str | None = Field(None, description="a WAITING task is cancelled then")
    pinned_worker: str | None = Field(None, description="a broadcast copy runs there only")
    tenant: str

    @classmethod
    def of(cls, t: Task, **extra: Any) -> Self:
        return cls(**task_fields(t), **extra)

    @classmethod
    def listed(cls, t: Task, include: frozenset[str]) -> bytes:
        """One list row as JSON, the big fields not ``include``d left out."""
        row = cls.of(t).model_dump(mode="json", exclude=set(BIG_FIELDS - include))
        return orjson.dumps(row)


class TaskOut(TaskSummaryOut):
    """A whole task, as one-task answers give it."""

    payload: dict[str, Any]
    result: Any = None
    created: bool | None = Field(
        None, description="on create: false when an idempotency key matched"
    )
    cancel_requested: bool | None = None


def task_fields(t: Task) -> dict[str, Any]:
    """A task's fields as ``TaskSummaryOut`` and ``TaskOut`` name them, in their order."""
    return {
        "task_id": t.id, "task_type": t.task_type, "status": str(t.status),
        "priority": t.priority.label, "payload": t.payload, "result": t.result,
        "error": t.error, "metadata": t.metadata, "attempt": t.attempt,
        "retry_count": t.retry_count, "max_retries": t.max_retries,
        "timeout_seconds": float(t.timeout), "worker_id": t.worker_id,
        "idempotency_key": t.idempotency_key, "created_at": iso(t.created_at),
        "run_at": iso(t.run_at), "started_at": iso(t.started_at),
        "finished_at": iso(t.finished_at), "wait_deadline": iso(t.wait_deadline),
        "pinned_worker": t.pinned_worker, "tenant": t.tenant,
    }


def created_json(t: Task, created: bool) -> dict[str, Any]:
    """``TaskOut.of(t, created=created)`` as its JSON carries it, without building the model:
    a create's answer, serialised directly (the create routes are the API's hot path)."""
    return {**task_fields(t), "created": created, "cancel_requested": None}


class TaskList(BaseModel):
    """A page of summaries, newest first; streamed row by row. A page ends early (with a
    ``next_cursor``) once the included payloads and results reach the server's
    ``max_list_bytes``; a single task over it comes alone on its own page."""

    tasks: list[TaskSummaryOut]
    next_cursor: str | None = None


class BatchOut(BaseModel):
    tasks: list[TaskOut]


class PriorityPatch(BaseModel):
    model_config = _STRICT

    priority: PriorityIn

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str | int | None) -> str | int | None:
        if value is None:
            raise ValueError("priority is required")
        parse_priority(value)
        return value


class LogOut(BaseModel):
    attempt: int
    from_status: str | None
    to_status: str
    at: str | None
    message: str
    worker_id: str | None = None
    epoch: int | None = None

    @classmethod
    def of(cls, log: TaskLog) -> LogOut:
        return cls(
            attempt=log.attempt, from_status=log.from_status and str(log.from_status),
            to_status=str(log.to_status), at=iso(log.at), message=log.message,
            worker_id=log.worker_id, epoch=log.epoch,
        )


class LogList(BaseModel):
    task_id: str
    logs: list[LogOut]


class BackoffIn(BaseModel):
    model_config = _STRICT

    base: float = Field(1.0, ge=0, le=86_400)
    factor: float = Field(2.0, ge=1, le=100)
    cap: float = Field(300.0, ge=0, le=7 * 86_400)
    jitter: float = Field(0.2, ge=0, le=1)


class TaskConfigIn(BaseModel):
    model_config = _STRICT

    executor: str = Field("python", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    executor_config: dict[str, Any] = Field(default_factory=dict, description=(
        "The executor's settings. Secret fields (every value of http `headers` and of grpc "
        "`metadata`, and the `secret_fields` a plug-in declares) are stored encrypted and "
        'answered as "***"; a PUT that sends "***" for one keeps the value stored there.'))
    timeout_seconds: float | None = Field(None, gt=0, le=7 * 86_400)
    max_retries: int | None = Field(None, ge=0, le=100)
    priority: PriorityIn = None
    backoff: BackoffIn | None = None
    concurrency_limit: int | None = Field(None, ge=1, le=1_000_000)
    rate_limit: float | None = Field(None, gt=0, le=1_000_000, description="tasks per second")
    enabled: bool = True
    tenant: str | None = Field(None, max_length=64, description=(
        "May be left out; when given (as a GET answers it) it must be the tenant the config "
        "is written to: the key's, or the superadmin's `?tenant=`."))

    @field_validator("priority")
    @classmethod
    def _priority(cls, value: str | int | None) -> str | int | None:
        parse_priority(value)
        return value

    def to_config(self, task_type: str, now: float, tenant: str = DEFAULT_TENANT) -> TaskConfig:
        if self.tenant is not None and self.tenant != tenant:
            raise ValidationError(
                f"tenant {self.tenant!r} in the body differs from the tenant written to "
                f"({tenant!r}); leave it out, or name the tenant with ?tenant= (superadmin)"
            )
        b = self.backoff
        return TaskConfig(
            task_type=task_type, executor=self.executor, executor_config=self.executor_config,
            timeout=self.timeout_seconds, max_retries=self.max_retries,
            priority=parse_priority(self.priority),
            backoff=None if b is None else Backoff(b.base, b.factor, b.cap, b.jitter),
            concurrency_limit=self.concurrency_limit, rate_limit=self.rate_limit,
            enabled=self.enabled, updated_at=now, tenant=tenant,
        )


class TaskConfigOut(TaskConfigIn):
    task_type: str
    updated_at: str | None
    tenant: str

    @classmethod
    def of(cls, c: TaskConfig) -> TaskConfigOut:
        b = c.backoff
        return cls(
            task_type=c.task_type, executor=c.executor,
            executor_config=shown_config(c.executor, c.executor_config),
            timeout_seconds=c.timeout, max_retries=c.max_retries,
            priority=None if c.priority is None else c.priority.label,
            backoff=None if b is None else BackoffIn(
                base=b.base, factor=b.factor, cap=b.cap, jitter=b.jitter),
            concurrency_limit=c.concurrency_limit, rate_limit=c.rate_limit, enabled=c.enabled,
            updated_at=iso(c.updated_at), tenant=c.tenant,
        )


def shown_config(executor: str, executor_config: dict[str, Any]) -> dict[str, Any]:
    """``executor_config`` with every secret as ``"***"``, as every answer shows it; if a
    plug-in's fields cannot be read here, every value is masked rather than guessed at."""
    try:
        return redact(executor_config, secret_fields(executor))
    except ConfigError:
        return dict.fromkeys(executor_config, MASK)


def shown_view(view: Any) -> Any:
    """An audit row's before / after: a config's ``executor_config`` masked as above."""
    if not isinstance(view, dict) or not isinstance(view.get("executor_config"), dict):
        return view
    return {**view, "executor_config": shown_config(str(view.get("executor")),
                                                    view["executor_config"])}


class TaskConfigList(BaseModel):
    configs: list[TaskConfigOut]


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    error: ErrorBody
