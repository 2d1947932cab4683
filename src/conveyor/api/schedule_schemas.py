"""Request and response bodies of the schedule routes (``/api/v1/schedules``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from conveyor.api.schemas import PriorityIn, iso, parse_priority, utc_seconds
from conveyor.schedules.cron import Trigger
from conveyor.schedules.model import (
    DEFAULT_CATCHUP,
    MAX_CATCHUP,
    MAX_JITTER,
    Fire,
    Overlap,
    Schedule,
    TaskTemplate,
)
from conveyor.schedules.service import Backfilled

_STRICT = ConfigDict(extra="forbid")
_UTC = "ISO 8601; a time without an offset is UTC"
MAX_EVERY = 10 * 366 * 86_400


class ScheduleIn(BaseModel):
    """A schedule: the task each fire creates and when it fires (exactly one of ``cron`` and
    ``every_seconds``)."""

    model_config = _STRICT

    task_type: str = Field(min_length=1, max_length=128, examples=["report"])
    payload: dict[str, Any] = Field(default_factory=dict)
    cron: str | None = Field(None, min_length=1, max_length=255, examples=["0 9 * * MON-FRI"],
                             description="5 fields, or 6 with seconds first; @hourly etc.")
    every_seconds: StrictInt | None = Field(None, le=MAX_EVERY, examples=[30],
                                            description="> 0; at most ten years")
    timezone: str = Field("UTC", max_length=64, examples=["Asia/Shanghai"],
                          description="IANA zone the cron expression reads wall clocks in")
    overlap: Overlap = Overlap.SKIP
    catchup_window_seconds: float = Field(DEFAULT_CATCHUP, ge=0, le=MAX_CATCHUP)
    jitter_seconds: float = Field(0.0, ge=0, le=MAX_JITTER)
    start_at: datetime | None = Field(None, description=_UTC)
    end_at: datetime | None = Field(None, description=_UTC)
    paused: bool = False
    priority: PriorityIn = None
    timeout_seconds: float | None = Field(None, gt=0, le=7 * 86_400)
    max_retries: int | None = Field(None, ge=0, le=100)
    metadata: dict[str, str] = Field(default_factory=dict)

    def to_schedule(self, tenant: str, name: str, source: str = "api") -> Schedule:
        return Schedule(
            name=name, tenant=tenant, source=source,
            template=TaskTemplate(
                task_type=self.task_type, payload=self.payload,
                priority=parse_priority(self.priority), timeout=self.timeout_seconds,
                max_retries=self.max_retries, metadata=self.metadata,
            ),
            trigger=Trigger(
                cron=self.cron, every_seconds=self.every_seconds, timezone=self.timezone,
                start_at=utc_seconds(self.start_at, "start_at"),
                end_at=utc_seconds(self.end_at, "end_at"),
            ),
            overlap=self.overlap, catchup_window=self.catchup_window_seconds,
            jitter=self.jitter_seconds, paused=self.paused,
        )


class ScheduleOut(BaseModel):
    name: str
    task_type: str
    payload: dict[str, Any]
    cron: str | None
    every_seconds: int | None
    timezone: str
    overlap: str
    catchup_window_seconds: float
    jitter_seconds: float
    start_at: str | None
    end_at: str | None
    paused: bool
    priority: str | None
    timeout_seconds: float | None
    max_retries: int | None
    metadata: dict[str, str]
    source: str = Field(description="api, or code: declared with @app.periodic")
    next_fire_at: str | None = Field(description="null while paused or once ended")
    last_fire_at: str | None
    last_task_id: str | None
    buffered: int
    missed: int
    created_at: str | None
    updated_at: str | None
    created: bool | None = Field(None, description="on PUT: true when it was created")

    @classmethod
    def of(cls, s: Schedule, **extra: Any) -> Self:
        t, g = s.template, s.trigger
        return cls(
            name=s.name, task_type=t.task_type, payload=t.payload, cron=g.cron,
            every_seconds=g.every_seconds, timezone=g.timezone, overlap=str(s.overlap),
            catchup_window_seconds=s.catchup_window, jitter_seconds=s.jitter,
            start_at=iso(g.start_at), end_at=iso(g.end_at), paused=s.paused,
            priority=None if t.priority is None else t.priority.label,
            timeout_seconds=t.timeout, max_retries=t.max_retries, metadata=t.metadata,
            source=s.source, next_fire_at=iso(s.next_fire_at), last_fire_at=iso(s.last_fire_at),
            last_task_id=s.last_task_id, buffered=s.buffered, missed=s.missed,
            created_at=iso(s.created_at), updated_at=iso(s.updated_at), **extra,
        )


class ScheduleList(BaseModel):
    schedules: list[ScheduleOut]


class FireOut(BaseModel):
    fire_at: str | None
    kind: str = Field(description="scheduled (also when backfilled), or manual (trigger)")
    outcome: str = Field(description="fired, skipped, buffered, missed or failed")
    task_id: str | None
    recorded_at: str | None
    late_seconds: float = Field(description="how long after its fire time it was recorded")
    note: str | None

    @classmethod
    def of(cls, f: Fire) -> Self:
        return cls(
            fire_at=iso(f.fire_at), kind=str(f.kind), outcome=str(f.outcome),
            task_id=f.task_id, recorded_at=iso(f.recorded_at),
            late_seconds=round(max(0.0, f.recorded_at - f.fire_at), 6), note=f.note,
        )


class FireList(BaseModel):
    fires: list[FireOut]


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: datetime = Field(alias="from", description=_UTC)
    end: datetime = Field(alias="to", description=_UTC)


class BackfillOut(BaseModel):
    fires: int = Field(description="fire times in the range")
    created: int = Field(description="tasks created (fires not recorded before)")

    @classmethod
    def of(cls, b: Backfilled) -> Self:
        return cls(fires=b.fires, created=b.created)
