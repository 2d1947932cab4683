"""Response bodies of the operations routes: workers, queues, stats, the scheduler leader."""

from __future__ import annotations

from pydantic import BaseModel, Field


class WorkerOut(BaseModel):
    worker_id: str
    host: str
    pid: int
    capacity: int
    prefetch: int
    load: int
    types: list[str]
    weight: float
    draining: bool
    started_at: str | None
    last_heartbeat: str | None


class WorkerList(BaseModel):
    workers: list[WorkerOut]


class WorkerRecordOut(BaseModel):
    worker_id: str
    host: str
    pid: int
    capacity: int
    types: list[str]
    state: str = Field(description="alive, stopped (clean exit) or dead (reaped)")
    first_seen: str | None
    last_heartbeat: str | None
    state_changed_at: str | None = Field(
        description="when the state last changed; null for workers last changed before it was kept"
    )


class WorkerHistory(BaseModel):
    workers: list[WorkerRecordOut]


class QueuesOut(BaseModel):
    lengths: dict[str, int] = Field(description="high, normal, low and delayed")
    paused: list[str]
    no_worker: dict[str, int] = Field(
        default_factory=dict,
        description="pending tasks by type, for the types no live worker runs: they stay "
        "queued until a worker that runs the type (e.g. one started with its --app) comes",
    )
    tenants: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="queued tasks by priority and tenant, for the tenants with work: within a "
        "priority they take turns (weighted round-robin)",
    )


class StatsOut(BaseModel):
    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    window_seconds: float
    created_per_second: float = Field(description="over the window")
    finished_per_second: dict[str, float] = Field(description="over the window, by status")


class SchedulerOut(BaseModel):
    leader: str | None
    epoch: int | None
    queues: QueuesOut
    duties: dict[str, str | None] = Field(
        default_factory=dict, description="the leader's duties and when each last ran"
    )
    standby: dict[str, str | None] = Field(
        default_factory=dict,
        description="live schedulers other than the leader, and when each last announced",
    )
