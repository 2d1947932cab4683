"""From planned fires to what the store records: each FIRED fire's task (built by
``TaskService.build``, so it gets its type's defaults and checks like any task) and its
history row. Shared by the leader's firing duty and by ``trigger`` / ``backfill``."""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.errors import ValidationError
from conveyor.models import Task
from conveyor.schedules.cron import fire_label
from conveyor.schedules.model import (
    Fire,
    FireKind,
    FireOutcome,
    Schedule,
    idempotency_key,
    jitter_offset,
)
from conveyor.schedules.plan import PlannedFire
from conveyor.service import TaskRequest, TaskService

#: Metadata every fired task carries, so a task can be traced back to its fire.
SCHEDULE_KEY, FIRE_KEY = "conveyor.schedule", "conveyor.fire_at"


def request_for(schedule: Schedule, at: float, kind: FireKind) -> TaskRequest:
    t = schedule.template
    late = at + jitter_offset(schedule.name, at, schedule.jitter)
    return TaskRequest(
        task_type=t.task_type, payload=t.payload, priority=t.priority, timeout=t.timeout,
        max_retries=t.max_retries, run_at=late if kind == FireKind.SCHEDULED else None,
        idempotency_key=idempotency_key(schedule.name, at, kind),
        metadata={**t.metadata, SCHEDULE_KEY: schedule.name, FIRE_KEY: fire_label(at)},
    )


async def build_fires(
    service: TaskService, schedule: Schedule, planned: Sequence[PlannedFire], kind: FireKind,
    now: float, epoch: int | None,
) -> list[tuple[Fire, Task | None]]:
    """Fire rows with their tasks. A task that cannot be built (its type was removed, its
    payload no longer fits) fails its fires, recorded with the reason, not the whole pass."""
    fired = [p for p in planned if p.outcome == FireOutcome.FIRED]
    tasks: dict[float, Task] = {}
    failure: str | None = None
    if fired:
        try:
            built = await service.build(
                [request_for(schedule, p.fire_at, kind) for p in fired], tenant=schedule.tenant
            )
            tasks = {p.fire_at: t for p, t in zip(fired, built, strict=True)}
        except ValidationError as exc:
            failure = str(exc)
    out: list[tuple[Fire, Task | None]] = []
    for p in planned:
        outcome, note = p.outcome, p.note
        if outcome == FireOutcome.FIRED and failure is not None:
            outcome, note = FireOutcome.FAILED, failure
        fire = Fire(schedule.tenant, schedule.name, p.fire_at, kind, outcome,
                    recorded_at=now, epoch=epoch, note=note)
        out.append((fire, tasks.get(p.fire_at) if outcome == FireOutcome.FIRED else None))
    return out
