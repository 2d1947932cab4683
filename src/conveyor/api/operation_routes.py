"""Operations routes: workers, queues, the scheduler leader, pause and resume."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from conveyor.api.auth import Admin, Reader, acting
from conveyor.api.operation_schemas import (
    QueuesOut,
    SchedulerOut,
    StatsOut,
    WorkerHistory,
    WorkerList,
    WorkerOut,
    WorkerRecordOut,
)
from conveyor.api.schemas import iso
from conveyor.api.task_routes import ERRORS
from conveyor.api.tenancy import TenantParam, check_fleet, reach
from conveyor.models import WorkerInfo
from conveyor.operations import Operations, QueueState

PAUSE = "pause and resume act on"
DRAIN = "a worker runs"
router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["operations"])


def ops(request: Request) -> Operations:
    found: Operations = request.app.state.operations
    return found


def _queues(state: QueueState) -> QueuesOut:
    return QueuesOut(
        lengths=state.lengths, paused=sorted(state.paused), no_worker=state.no_worker,
        tenants=state.tenants,
    )


@router.get("/workers", response_model=WorkerList)
async def workers(request: Request, who: Reader, tenant: TenantParam = None) -> WorkerList:
    """Live workers with their load (queued + running) and capacity."""
    return WorkerList(workers=[
        _worker(w) for w in await ops(request).live_workers(reach(who, tenant))])


def _worker(w: WorkerInfo) -> WorkerOut:
    return WorkerOut(
        worker_id=w.worker_id, host=w.host, pid=w.pid, capacity=w.capacity,
        prefetch=w.prefetch, load=w.load, types=list(w.types), weight=w.weight,
        draining=w.draining, started_at=iso(w.started_at),
        last_heartbeat=iso(w.last_heartbeat),
    )


@router.post("/workers/{worker_id}/drain", response_model=WorkerOut, status_code=202)
async def drain_worker(
    worker_id: Annotated[str, Path(max_length=128)], request: Request, who: Admin,
) -> WorkerOut:
    """Ask one live worker to drain: at its next heartbeat it takes no new work, hands back
    what was queued for it and lets its running tasks finish; then it stays registered as
    `draining`, idle, until its process is stopped (its API and scheduler, in a standalone
    process, go on). The answer is the worker as it was. 404 if no live worker has this id.
    The fleet is every tenant's: a superadmin key or an admin key of the default tenant."""
    check_fleet(who, DRAIN)
    return _worker(await ops(request).drain(worker_id))


@router.get("/workers/history", response_model=WorkerHistory)
async def worker_history(
    request: Request, who: Reader, tenant: TenantParam = None
) -> WorkerHistory:
    """Every worker ever seen (the durable ``worker_registry``), live or not."""
    return WorkerHistory(workers=[
        WorkerRecordOut(
            worker_id=r.worker_id, host=r.host, pid=r.pid, capacity=r.capacity,
            types=list(r.types), state=r.state, first_seen=iso(r.first_seen),
            last_heartbeat=iso(r.last_heartbeat), state_changed_at=iso(r.state_changed_at),
        )
        for r in await ops(request).worker_records(reach(who, tenant))
    ])


@router.get("/queues", response_model=QueuesOut)
async def queues(request: Request, who: Reader, tenant: TenantParam = None) -> QueuesOut:
    """Queue lengths by priority; for a tenant-bound key, its own PENDING tasks by priority."""
    return _queues(await ops(request).queues(reach(who, tenant)))


@router.get("/scheduler", response_model=SchedulerOut)
async def scheduler(
    request: Request, who: Reader, tenant: TenantParam = None
) -> SchedulerOut:
    """The current leader and its fencing epoch, the standby schedulers, and the queues."""
    state = await ops(request).scheduler(reach(who, tenant))
    return SchedulerOut(
        leader=state.leader.holder if state.leader else None,
        epoch=state.leader.epoch if state.leader else None,
        queues=_queues(state.queues),
        duties={name: iso(ts) for name, ts in sorted(state.duties.items())},
        standby={holder: iso(ts) for holder, ts in sorted(state.standby.items())},
    )


@router.get("/stats", response_model=StatsOut)
async def stats(
    request: Request, who: Reader,
    window: Annotated[float, Query(ge=10, le=86_400, description="seconds")] = 300,
    tenant: TenantParam = None,
) -> StatsOut:
    """Tasks by state and by type, and creation / completion rates over the last ``window``."""
    s = await ops(request).stats(window, time.time(), reach(who, tenant))
    return StatsOut(
        by_status=s.by_status, by_type=s.by_type, window_seconds=s.window,
        created_per_second=s.created / s.window,
        finished_per_second={k: v / s.window for k, v in sorted(s.finished.items())},
    )


@router.post("/queues/{name}/pause", response_model=QueuesOut)
async def pause(name: str, request: Request, who: Admin) -> QueuesOut:
    """Stop dispatching a priority (high, normal, low) or a task type; queued tasks wait.
    Every tenant's: a superadmin key or an admin key of the default tenant."""
    check_fleet(who, PAUSE)
    return _queues(await ops(request).set_paused(
        name, True, who.sees, actor=acting(who, request)))


@router.post("/queues/{name}/resume", response_model=QueuesOut)
async def resume(name: str, request: Request, who: Admin) -> QueuesOut:
    check_fleet(who, PAUSE)
    return _queues(await ops(request).set_paused(
        name, False, who.sees, actor=acting(who, request)))
