"""The audit log's values: who acted (``Actor``), what they did (``AuditEntry``), how a stored
row reads back (``AuditRecord``) and what a query asks for (``AuditQuery``). Pure.

An entry is built by the code that performs an operator action and handed to the store method
that performs it (``audit=``), which writes the row in the same transaction as the change
(``store.audit.record``); so an action that was refused, or rolled back, leaves no row, and a
change that committed always has its row. Actions that are not SQL changes (pause / resume, the
signal that stops a running task) write their row right after the change succeeded
(``store.audit.write``); design.md §11 says what is atomic there and what is not.

Actions are named ``<kind>.<verb>``; the kind is the kind of target (``task``, ``config``,
``queue``, ``key``; later ``schedule``, ``workflow``), so a new feature audits with one new
``Action`` member and one call, and no new column.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from conveyor.apikeys import ApiKey, Principal
from conveyor.errors import ValidationError
from conveyor.models import Task, TaskConfig, TenantLimits
from conveyor.schedules.model import Fire, FireOutcome, Schedule
from conveyor.tenants import DEFAULT_TENANT

ACTION_PATTERN = re.compile(r"^[a-z][a-z_]{0,30}\.[a-z][a-z_]{0,30}$")
MAX_LIMIT = 1000


class Action(StrEnum):
    TASK_CANCEL = "task.cancel"
    TASK_RETRY = "task.retry"
    TASK_PRIORITY = "task.priority"
    CONFIG_PUT = "config.put"
    CONFIG_DELETE = "config.delete"
    QUEUE_PAUSE = "queue.pause"
    QUEUE_RESUME = "queue.resume"
    KEY_CREATE = "key.create"
    KEY_REVOKE = "key.revoke"
    SCHEDULE_PUT = "schedule.put"
    SCHEDULE_DELETE = "schedule.delete"
    SCHEDULE_PAUSE = "schedule.pause"
    SCHEDULE_RESUME = "schedule.resume"
    SCHEDULE_TRIGGER = "schedule.trigger"
    SCHEDULE_BACKFILL = "schedule.backfill"
    TENANT_SET = "tenant.set"
    TENANT_RESET = "tenant.reset"
    WORKFLOW_CANCEL = "workflow.cancel"
    WORKFLOW_RETRY = "workflow.retry"
    WORKER_DRAIN = "worker.drain"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: the API key (None when authentication is off, or for the CLI, which writes
    to the database directly), its tenant, and the client's address (``"cli"`` for the CLI)."""

    key_id: str | None
    tenant: str = DEFAULT_TENANT
    client: str | None = None

    @classmethod
    def of(cls, principal: Principal, client: str | None = None) -> Actor:
        return cls(principal.key_id, principal.tenant, client)


CLI = Actor(None, DEFAULT_TENANT, "cli")
CODE = Actor(None, DEFAULT_TENANT, "code")  # the sync of code-declared schedules at start


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One operator action on one target. ``before`` / ``after`` are JSON values (the parts of
    the target the action changed, None where there is no such side: a config created or
    deleted); ``detail`` is a short free text."""

    actor: Actor
    action: str
    target_id: str
    before: Any = None
    after: Any = None
    detail: str | None = None

    def __post_init__(self) -> None:
        check_action(self.action)

    @property
    def target_kind(self) -> str:
        return self.action.partition(".")[0]

    def change(self, before: Any, after: Any) -> AuditEntry:
        """The same entry with what the store saw before and after, inside its transaction."""
        return dataclasses.replace(self, before=before, after=after)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry as stored: its id (the list's cursor) and when it was written."""

    id: int
    at: float
    entry: AuditEntry


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters of an audit list (each None: any), newest first, ids below ``cursor``."""

    action: str | None = None
    target_id: str | None = None
    key_id: str | None = None
    since: float | None = None
    until: float | None = None
    cursor: int | None = None
    limit: int = 50

    def __post_init__(self) -> None:
        if self.action is not None:
            check_action(self.action)
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValidationError("since: must not be after until")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValidationError(f"limit must be within 1..{MAX_LIMIT}")


@dataclass(frozen=True, slots=True)
class AuditPage:
    records: list[AuditRecord]
    next_cursor: int | None


def check_action(action: str) -> str:
    if not isinstance(action, str) or not ACTION_PATTERN.match(action):
        raise ValidationError(
            f"action: {action!r} is not an action name (kind.verb, e.g. task.cancel)"
        )
    return action


def parse_cursor(text: str | None) -> int | None:
    """A ``next_cursor`` of an earlier page (a row id), else a 422."""
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise ValidationError("cursor: not a cursor of this API (pass next_cursor back)")
    return int(text)


# -- what an action's before / after show of its target ---------------------------------------

def task_view(t: Task) -> dict[str, Any]:
    return {"status": str(t.status), "priority": t.priority.label, "attempt": t.attempt}


def config_view(c: TaskConfig | None) -> dict[str, Any] | None:
    """A config as stored (``executor_config`` as the store holds it: sealed fields stay
    sealed), without its type (the target) and its write time (the row's own ``at``)."""
    if c is None:
        return None
    view = dataclasses.asdict(c)
    del view["task_type"], view["updated_at"]
    view["priority"] = None if c.priority is None else c.priority.label
    return view


def limits_view(limits: TenantLimits | None) -> dict[str, Any] | None:
    """A tenant's weight and quotas, without the tenant (the target) and the write time."""
    if limits is None:
        return None
    return {"weight": limits.weight, "max_pending": limits.max_pending,
            "creates_per_second": limits.creates_per_second}


def schedule_view(s: Schedule | None) -> dict[str, Any] | None:
    """A schedule's definition (what a put changes), without its name (the target), its
    firing state (the leader's, not an operator's) and its write times."""
    if s is None:
        return None
    t, g = s.template, s.trigger
    return {
        "task_type": t.task_type, "payload": t.payload,
        "priority": None if t.priority is None else t.priority.label,
        "timeout": t.timeout, "max_retries": t.max_retries, "metadata": t.metadata,
        "cron": g.cron, "every_seconds": g.every_seconds, "timezone": g.timezone,
        "start_at": g.start_at, "end_at": g.end_at, "overlap": str(s.overlap),
        "catchup_window": s.catchup_window, "jitter": s.jitter, "paused": s.paused,
        "source": s.source,
    }


def fires_view(recorded: list[Fire]) -> dict[str, Any]:
    """What one fire transaction (a trigger, one chunk of a backfill) recorded: how many
    fires, how many created a task, their span; a single fire names its task and outcome."""
    view: dict[str, Any] = {
        "fires": len(recorded),
        "fired": sum(1 for f in recorded if f.outcome == FireOutcome.FIRED),
        "from": min((f.fire_at for f in recorded), default=None),
        "to": max((f.fire_at for f in recorded), default=None),
    }
    if len(recorded) == 1:
        view |= {"task_id": recorded[0].task_id, "outcome": str(recorded[0].outcome)}
    return view


def key_created(actor: Actor, key: ApiKey) -> AuditEntry:
    """The entry of a new key, the same from the CLI and from an API route."""
    return AuditEntry(actor, Action.KEY_CREATE, key.key_id,
                      after={"scope": key.scope.label, "name": key.name})


def key_revoked(actor: Actor, key_id: str) -> AuditEntry:
    return AuditEntry(actor, Action.KEY_REVOKE, key_id)
