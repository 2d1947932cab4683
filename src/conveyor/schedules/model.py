"""What a schedule is (docs/design.md §9): the task it creates, its trigger, its overlap policy,
and the durable firing state (``next_fire_at``, ``last_fire_at``) that lets any leader carry on
where the last one stopped. Pure values; the store keeps them in ``schedules`` and
``schedule_fires``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from conveyor.models import Priority
from conveyor.schedules.cron import Trigger, fire_label
from conveyor.tenants import DEFAULT_TENANT

DEFAULT_CATCHUP = 60.0
MAX_JITTER = 3600.0
MAX_CATCHUP = 7 * 86_400.0


class Overlap(StrEnum):
    """What a fire does while the previous fire's task has not finished."""

    SKIP = "skip"                  # record the fire as skipped
    BUFFER_ONE = "buffer_one"      # keep one fire waiting; it fires when the task ends
    BUFFER_ALL = "buffer_all"      # keep every fire waiting; they fire one after another
    CANCEL_OTHER = "cancel_other"  # cancel the running task, fire at once
    ALLOW = "allow"                # fire regardless


class FireKind(StrEnum):
    SCHEDULED = "scheduled"  # a fire time of the trigger (also when backfilled)
    MANUAL = "manual"        # ``trigger``: now, outside the trigger


class FireOutcome(StrEnum):
    FIRED = "fired"
    SKIPPED = "skipped"      # overlap policy
    BUFFERED = "buffered"    # waiting for the running task (buffer_one / buffer_all)
    MISSED = "missed"        # older than the catch-up window when a leader got to it
    FAILED = "failed"        # the task could not be built (its type is gone, say)


@dataclass(frozen=True, slots=True)
class TaskTemplate:
    """The task each fire creates; ``None`` fields take the type's defaults at fire time."""

    task_type: str
    payload: dict[str, Any] = field(default_factory=dict)
    priority: Priority | None = None
    timeout: float | None = None
    max_retries: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Schedule:
    name: str
    template: TaskTemplate
    trigger: Trigger
    tenant: str = DEFAULT_TENANT
    overlap: Overlap = Overlap.SKIP
    catchup_window: float = DEFAULT_CATCHUP
    jitter: float = 0.0
    paused: bool = False
    source: str = "api"  # "code": declared with @app.periodic and synced at start
    next_fire_at: float | None = None  # None: paused, or no fire left before end_at
    last_fire_at: float | None = None
    last_task_id: str | None = None
    buffered: int = 0
    missed: int = 0
    created_at: float = 0.0
    updated_at: float = 0.0
    version: int = 0

    def same_definition(self, other: Schedule) -> bool:
        """True when ``other`` would fire the same tasks at the same times."""
        return (self.template, self.trigger, self.overlap, self.catchup_window, self.jitter,
                self.paused) == (other.template, other.trigger, other.overlap,
                                 other.catchup_window, other.jitter, other.paused)


@dataclass(frozen=True, slots=True)
class Fire:
    """One row of a schedule's fire history."""

    tenant: str
    name: str
    fire_at: float
    kind: FireKind
    outcome: FireOutcome
    task_id: str | None = None
    recorded_at: float = 0.0
    epoch: int | None = None
    note: str | None = None


def idempotency_key(name: str, fire_at: float, kind: FireKind = FireKind.SCHEDULED) -> str:
    """The fire's task key: one task per (schedule, fire time), whoever fires it, however
    often (two leaders, a retried transaction, a backfill over past fires)."""
    suffix = ":manual" if kind == FireKind.MANUAL else ""
    return f"schedule:{name}:{fire_label(fire_at)}{suffix}"


def jitter_offset(name: str, fire_at: float, jitter: float) -> float:
    """A delay in [0, jitter) that depends only on the fire, so a retried or repeated firing
    asks for the same ``run_at`` (and spreads fires of many schedules due at one time)."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{name}\x00{fire_at!r}".encode()).digest()
    return jitter * int.from_bytes(digest[:8], "big") / 2**64
