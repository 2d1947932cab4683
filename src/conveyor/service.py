"""``TaskService``: what the API, the CLI and the Python client can do with tasks.

It validates, applies defaults (``Catalog``), writes the store first and the queues second: a
crash between the two leaves a PENDING row that the orphan sweep re-enqueues, never a queued id
without a row.

Tenancy: reads take the caller's tenant filter (``Principal.sees``: None spans all) and hand it
to the store, which filters in SQL; a task of another tenant is ``NotFound`` with the very text
of a missing id, so its existence cannot be told. New tasks and configs go into one tenant.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from conveyor.apikeys import ANONYMOUS, Principal
from conveyor.audit import Action, Actor, AuditEntry, task_view
from conveyor.catalog import Catalog, TypeSpec
from conveyor.coalescer import Coalescer
from conveyor.config import Settings
from conveyor.coordination.protocol import AttemptRef, Coordination
from conveyor.dependencies import check_parents, check_policy, parse_input, wait_deadline
from conveyor.errors import Conflict, Forbidden, NotFound, ValidationError
from conveyor.executors.functions import FunctionPolicy
from conveyor.executors.rules import check_task_config
from conveyor.executors.secret_fields import secret_fields
from conveyor.ids import is_id, new_ids
from conveyor.keyring import Keyring
from conveyor.models import (
    Priority,
    Task,
    TaskConfig,
    TaskLog,
    TaskStatus,
    check_task_type,
)
from conveyor.observability import tracing
from conveyor.placement import place, queue_item
from conveyor.quotas import LimitsCache, Quotas
from conveyor.sealing import seal
from conveyor.store.protocol import Created, ListRequest, Page, TaskStore
from conveyor.tenants import DEFAULT_TENANT
from conveyor.values import check_text, encode_json

MAX_BATCH = 1000
MAX_DELAY = 365 * 86_400.0
MAX_METADATA_ITEMS = 64
MAX_METADATA_BYTES = 16_384  # the encoded map; the column is MariaDB's TEXT (65,535 bytes)
MAX_KEY_CHARS = 255  # idempotency keys: the column is VARCHAR(255)
MAX_URL_CHARS = 2048  # callback_url: VARCHAR(2048)


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """A request for one task; ``None`` fields take the type's defaults."""

    task_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    priority: Priority | None = None
    timeout: float | None = None
    max_retries: int | None = None
    delay: float | None = None
    run_at: float | None = None
    idempotency_key: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    callback_url: str | None = None
    depends_on: tuple[str, ...] = ()  # parent task ids: the task waits for them (§10)
    on_parent_failure: str = "cancel"
    inputs: dict[str, str] = field(default_factory=dict)  # payload key -> "<parent>.result..."
    wait_timeout: float | None = None  # seconds a WAITING task waits at most, then CANCELLED
    pinned_worker: str | None = None  # a broadcast copy: the only worker it runs on


@dataclass(frozen=True, slots=True)
class Draft:
    """What the caller of ``TaskService.make`` decided for one task: its id, creation time,
    the prefix of its error texts, its parents' ids and the names its inputs may use for
    them (task ids for a plain create, node names in a workflow)."""

    task_id: str
    now: float
    where: str
    parents: tuple[str, ...] = ()
    named: Mapping[str, str] = field(default_factory=dict)
    parents_field: str = "depends_on"  # what the request calls the parents, for error texts


@dataclass(frozen=True, slots=True)
class CancelResult:
    task: Task
    requested: bool  # True when the task was running: a signal went to its worker


class TaskService:
    def __init__(
        self,
        store: TaskStore,
        coordination: Coordination,
        catalog: Catalog,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        keyring: Keyring | None = None,
    ) -> None:
        self.store = store
        self.coordination = coordination
        self.catalog = catalog
        self.settings = settings
        self.clock = clock
        self.keyring = keyring or Keyring.from_settings(settings)
        self._inserts: Coalescer[Task, Created] = Coalescer(self._insert_and_push, MAX_BATCH)
        self.limits = LimitsCache(store.tenant_limits)
        self.quotas = Quotas(self.limits, store.tenant_limits, coordination.queues, clock)

    # -- create ---------------------------------------------------------------------------

    async def submit(
        self, specs: Sequence[TaskRequest], principal: Principal = ANONYMOUS,
        tenant: str | None = None,
    ) -> list[Created]:
        """Create in ``tenant``, by default the caller's own (the API lets only a caller
        spanning tenants name another), within the tenant's quotas (``TooManyRequests``
        otherwise, with nothing written)."""
        with tracing.span("conveyor.create", tasks=len(specs)):
            tasks = await self.build(specs, principal, tenant)
            await self.quotas.admit(tenant or principal.tenant, len(tasks))
            return await self._inserts.submit(tasks)

    async def build(
        self, specs: Sequence[TaskRequest], principal: Principal = ANONYMOUS,
        tenant: str | None = None,
    ) -> list[Task]:
        """The tasks ``specs`` ask for in ``tenant`` (by default the caller's), checked and
        with their type's defaults, not yet stored: ``submit`` inserts them; a schedule's fire
        inserts them with its history row."""
        home = tenant or principal.tenant
        if not specs:
            raise ValidationError("no tasks given")
        if len(specs) > MAX_BATCH:
            raise ValidationError(f"at most {MAX_BATCH} tasks per batch, got {len(specs)}")
        now = self.clock()
        labelled = [(f"tasks[{i}]: " if len(specs) > 1 else "", s) for i, s in enumerate(specs)]
        types = await self.type_specs(labelled, home)
        tasks = []
        for (where, spec), task_id in zip(labelled, new_ids(len(specs), now), strict=True):
            parents = check_parents(spec.depends_on, spec.on_parent_failure, where)
            if spec.inputs and not parents:
                raise ValidationError(f"{where}inputs need depends_on: they read parents' results")
            draft = Draft(task_id, now, where, parents, {p: p for p in parents})
            tasks.append(self.make(spec, types[spec.task_type], draft, principal, home))
        await self._check_parents(tasks, home)
        return tasks

    async def type_specs(
        self, labelled: Sequence[tuple[str, TaskRequest]], tenant: str
    ) -> dict[str, TypeSpec]:
        """Each task type of ``labelled`` (error prefix, request) resolved once; an unknown or
        disabled one is refused with the prefix of the first request naming it."""
        resolved: dict[str, TypeSpec] = {}
        for where, spec in labelled:
            if spec.task_type not in resolved:
                try:
                    resolved[spec.task_type] = await self._spec_for(spec.task_type, tenant)
                except ValidationError as exc:
                    raise ValidationError(f"{where}{exc}") from None
        return resolved

    async def _check_parents(self, tasks: Sequence[Task], tenant: str) -> None:
        """Parents must be tasks of the tenant (those of the same batch count): a missing one
        and another tenant's are named alike, so neither can be told from the other."""
        batch = {t.id for t in tasks}
        wanted = sorted({p for t in tasks for p in t.parents} - batch)
        if not wanted:
            return
        known = [p for p in wanted if is_id(p)]
        found = {t.id for t in await self.store.tasks.get_many(known, tenant)} if known else set()
        missing = [p for p in wanted if p not in found]
        if missing:
            raise ValidationError(f"depends_on: no task with id {', '.join(missing)}")

    async def _insert_and_push(self, tasks: list[Task]) -> list[Created]:
        created = await self.store.tasks.insert(tasks)
        ready = [c.task for c in created if c.created and c.task.status == TaskStatus.PENDING]
        await place(self.coordination.queues, ready, self.clock())
        return created

    async def _spec_for(self, task_type: str, tenant: str) -> TypeSpec:
        check_task_type(task_type)
        spec = await self.catalog.spec(task_type, tenant)
        if spec is None:
            raise ValidationError(
                f"unknown task_type {task_type!r}: register a function for it or create a "
                f"task config (PUT /api/v1/task-configs/{task_type})"
            )
        if not spec.enabled:
            raise ValidationError(f"task_type {task_type!r} is disabled in its task config")
        return spec

    def make(
        self, spec: TaskRequest, type_spec: TypeSpec, draft: Draft, principal: Principal,
        tenant: str,
    ) -> Task:
        """One task from its request, its type's defaults and what its caller decided
        (``draft``): checked, not yet stored. A workflow makes its nodes here too."""
        where, now = draft.where, draft.now
        self._check_payload(spec, where)
        check_policy(spec.on_parent_failure, where)
        return Task(
            id=draft.task_id,
            task_type=spec.task_type,
            priority=spec.priority if spec.priority is not None else type_spec.priority,
            payload=spec.payload,
            status=TaskStatus.WAITING if draft.parents else TaskStatus.PENDING,
            max_retries=spec.max_retries if spec.max_retries is not None else type_spec.max_retries,
            timeout=spec.timeout if spec.timeout is not None else type_spec.timeout,
            created_at=now,
            run_at=self._run_at(spec, now, where),
            metadata=tracing.stamp(spec.metadata),  # the create's trace goes with the task
            idempotency_key=spec.idempotency_key,
            callback_url=spec.callback_url,
            owner=principal.key_id,
            tenant=tenant,
            parents=draft.parents,
            on_parent_failure=spec.on_parent_failure,
            inputs=tuple(parse_input(k, v, draft.named) for k, v in spec.inputs.items()),
            wait_deadline=wait_deadline(spec.wait_timeout, bool(draft.parents), now, where,
                                        field=draft.parents_field),
            pinned_worker=spec.pinned_worker,
        )

    def _check_payload(self, spec: TaskRequest, where: str) -> None:
        """Everything the store could refuse, refused here with the field named: a request
        that failed inside a coalesced batch would fail the other callers' requests with it."""
        if not isinstance(spec.payload, dict):
            raise ValidationError(f"{where}payload must be a JSON object")
        size = len(encode_json(spec.payload, f"{where}payload"))
        if size > self.settings.max_payload_bytes:
            raise ValidationError(
                f"{where}payload is {size} bytes; the limit is {self.settings.max_payload_bytes}"
            )
        if len(spec.metadata) > MAX_METADATA_ITEMS:
            raise ValidationError(f"{where}metadata holds at most {MAX_METADATA_ITEMS} entries")
        for key, value in spec.metadata.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise ValidationError(f"{where}metadata maps strings to strings")
            check_text(key, f"{where}metadata key {key!r}")
            check_text(value, f"{where}metadata.{key}")
        size = len(orjson.dumps(spec.metadata))
        if size > MAX_METADATA_BYTES:
            raise ValidationError(
                f"{where}metadata is {size} bytes encoded; the limit is {MAX_METADATA_BYTES}"
            )
        for name, text, limit in (("idempotency_key", spec.idempotency_key, MAX_KEY_CHARS),
                                  ("callback_url", spec.callback_url, MAX_URL_CHARS)):
            if text is None:
                continue
            if not isinstance(text, str) or not 1 <= len(text) <= limit:
                raise ValidationError(f"{where}{name} must be a string of 1..{limit} characters")
            check_text(text, f"{where}{name}", column=True)

    @staticmethod
    def _run_at(spec: TaskRequest, now: float, where: str) -> float:
        if spec.delay is not None and spec.run_at is not None:
            raise ValidationError(f"{where}give delay_seconds or run_at, not both")
        if spec.delay is not None:
            if not 0 <= spec.delay <= MAX_DELAY:
                raise ValidationError(f"{where}delay_seconds must be within 0..{MAX_DELAY:.0f}")
            return now + spec.delay
        if spec.run_at is not None:
            if spec.run_at > now + MAX_DELAY:
                raise ValidationError(f"{where}run_at is more than a year ahead")
            return max(now, spec.run_at)
        return now

    # -- read -----------------------------------------------------------------------------

    async def get(self, task_id: str, tenant: str | None = None) -> Task:
        """``tenant``: the caller's filter; another tenant's task is not found."""
        found = await self.store.tasks.get(task_id, tenant) if is_id(task_id) else None
        if found is None:
            raise NotFound(f"no task with id {task_id!r}")
        return found

    async def list_tasks(self, ask: ListRequest) -> Page:
        if ask.cursor is not None and not is_id(ask.cursor):
            raise ValidationError("cursor: not a cursor of this API (pass next_cursor back)")
        return await self.store.tasks.list_tasks(ask)

    async def logs(self, task_id: str, tenant: str | None = None) -> list[TaskLog]:
        await self.get(task_id, tenant)
        return await self.store.tasks.logs(task_id, tenant)

    # -- change ---------------------------------------------------------------------------

    async def _owned(self, task_id: str, principal: Principal) -> Task:
        found = await self.get(task_id, principal.sees)
        if not principal.owns(found.owner):
            raise Forbidden(f"task {task_id} was created by another API key")
        return found

    async def cancel(
        self, task_id: str, principal: Principal = ANONYMOUS, *, actor: Actor | None = None
    ) -> CancelResult:
        """Audited: a pending task's row goes with its move; a running one's right after the
        signal (``actor`` None: the principal, from no known address)."""
        await self._owned(task_id, principal)
        now = self.clock()
        audit = AuditEntry(actor or Actor.of(principal), Action.TASK_CANCEL, task_id)
        cancelled = await self.store.moves.cancel_pending(
            task_id, now, "cancelled by request", tenant=principal.sees, audit=audit
        )
        if cancelled is not None:
            await self.coordination.queues.remove([queue_item(cancelled)])
            return CancelResult(cancelled, False)
        current = await self.get(task_id, principal.sees)
        if current.status == TaskStatus.PROCESSING:
            # Keyed by attempt: the flag outlives the attempt, and must not stop a retry.
            await self.coordination.cancels.request(
                AttemptRef(task_id, current.attempt), current.timeout + 60.0
            )
            signalled = audit.change(task_view(current), {"cancel_requested": True})
            await self.store.audit.write(signalled, now, tenant=current.tenant)
            return CancelResult(current, True)
        raise Conflict(f"task {task_id} is {current.status} and cannot be cancelled")

    async def retry(
        self, task_id: str, principal: Principal = ANONYMOUS, *, actor: Actor | None = None
    ) -> Task:
        await self._owned(task_id, principal)
        now = self.clock()
        audit = AuditEntry(actor or Actor.of(principal), Action.TASK_RETRY, task_id)
        reopened = await self.store.moves.reopen(
            task_id, now, "manual retry", tenant=principal.sees, audit=audit
        )
        if reopened is None:
            current = await self.get(task_id, principal.sees)
            raise Conflict(
                f"task {task_id} is {current.status}; only FAILED, TIMEOUT or CANCELLED tasks "
                "can be retried"
            )
        if reopened.status == TaskStatus.PENDING:  # else WAITING for its parents again
            await place(self.coordination.queues, [reopened], now)
        return reopened

    async def set_priority(
        self, task_id: str, priority: Priority, principal: Principal = ANONYMOUS,
        *, actor: Actor | None = None,
    ) -> Task:
        before = await self._owned(task_id, principal)
        audit = AuditEntry(actor or Actor.of(principal), Action.TASK_PRIORITY, task_id)
        changed = await self.store.moves.set_priority(
            task_id, priority, self.clock(), tenant=principal.sees, audit=audit
        )
        if changed is None:
            raise Conflict(f"task {task_id} is {before.status}; only PENDING tasks change priority")
        if changed.priority != before.priority:
            await self.coordination.queues.remove([queue_item(before)])
            await place(self.coordination.queues, [changed], self.clock())
        return changed

    # -- task types -----------------------------------------------------------------------

    async def put_config(self, config: TaskConfig, *, actor: Actor | None = None) -> TaskConfig:
        check_task_type(config.task_type)
        encode_json(config.executor_config, "executor_config")
        check_task_config(config, FunctionPolicy(
            self.catalog.registrations, self.settings.worker.python_modules
        ))
        audit = AuditEntry(actor or Actor.of(ANONYMOUS), Action.CONFIG_PUT, config.task_type)
        saved = await self.store.configs.put_config(await self._sealed(config), audit=audit)
        self.catalog.invalidate(config.task_type, config.tenant)
        return saved

    async def _sealed(self, config: TaskConfig) -> TaskConfig:
        """``config`` with its secret values sealed; ``"***"`` keeps the stored value."""
        fields = secret_fields(config.executor)
        stored = (
            await self.store.configs.get_config(config.task_type, config.tenant) if fields else None
        )
        previous = stored.executor_config if stored and stored.executor == config.executor else None
        return replace(config, executor_config=seal(
            config.executor_config, fields, self.keyring.sealing, previous))

    async def get_config(self, task_type: str, tenant: str = DEFAULT_TENANT) -> TaskConfig:
        found = await self.store.configs.get_config(task_type, tenant)
        if found is None:
            raise NotFound(f"no task config for type {task_type!r}")
        return found

    async def delete_config(
        self, task_type: str, tenant: str = DEFAULT_TENANT, *, actor: Actor | None = None
    ) -> None:
        audit = AuditEntry(actor or Actor.of(ANONYMOUS), Action.CONFIG_DELETE, task_type)
        if not await self.store.configs.delete_config(task_type, tenant, audit=audit):
            raise NotFound(f"no task config for type {task_type!r}")
        self.catalog.invalidate(task_type, tenant)

    async def list_configs(self, tenant: str | None = None) -> list[TaskConfig]:
        return await self.store.configs.list_configs(tenant)

