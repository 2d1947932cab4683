"""REST routes for schedules under ``/api/v1/schedules``: every route sees only the caller's
tenant (a superadmin: the one ``?tenant=`` names, or the default one), so another tenant's
schedule is 404 like a missing one.

Every change hands its audit entry to the store, which writes the row in the change's own
transaction (docs/design.md §11): a refused change writes none."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from conveyor.api.auth import Admin, Reader, acting
from conveyor.api.schedule_schemas import (
    BackfillIn,
    BackfillOut,
    FireList,
    FireOut,
    ScheduleIn,
    ScheduleList,
    ScheduleOut,
)
from conveyor.api.schemas import utc_seconds
from conveyor.api.task_routes import ERRORS
from conveyor.api.tenancy import TenantParam, home, reach
from conveyor.apikeys import Principal
from conveyor.audit import Action, AuditEntry
from conveyor.schedules.service import ScheduleService

router = APIRouter(prefix="/api/v1/schedules", responses=ERRORS, tags=["schedules"])


def schedules(request: Request) -> ScheduleService:
    svc: ScheduleService = request.app.state.schedules
    return svc


def entry(
    request: Request, who: Principal, action: Action, name: str, detail: str | None = None
) -> AuditEntry:
    """The entry of an action on schedule ``name``; the store adds before / after."""
    return AuditEntry(acting(who, request), action, name, detail=detail)


@router.get("", response_model=ScheduleList)
async def list_schedules(
    request: Request, who: Reader, tenant: TenantParam = None
) -> ScheduleList:
    """The tenant's schedules by name, each with its next fire time."""
    found = await schedules(request).list_schedules(reach(who, tenant))
    return ScheduleList(schedules=[ScheduleOut.of(s) for s in found])


@router.put("/{name}", response_model=ScheduleOut, status_code=200,
            responses={201: {"model": ScheduleOut, "description": "created"}})
async def put_schedule(
    name: str, body: ScheduleIn, request: Request, response: Response, who: Admin,
    tenant: TenantParam = None,
) -> ScheduleOut:
    """Create or replace a schedule. A replace that keeps the trigger keeps the next fire."""
    where = home(who, tenant)
    saved, created = await schedules(request).put(
        body.to_schedule(where, name), audit=entry(request, who, Action.SCHEDULE_PUT, name))
    response.status_code = 201 if created else 200
    return ScheduleOut.of(saved, created=created)


@router.get("/{name}", response_model=ScheduleOut)
async def get_schedule(
    name: str, request: Request, who: Reader, tenant: TenantParam = None
) -> ScheduleOut:
    return ScheduleOut.of(await schedules(request).get(home(who, tenant), name))


@router.delete("/{name}", status_code=204)
async def delete_schedule(
    name: str, request: Request, who: Admin, tenant: TenantParam = None
) -> Response:
    """The schedule and its fire history; tasks it created stay."""
    where = home(who, tenant)
    await schedules(request).delete(
        where, name, audit=entry(request, who, Action.SCHEDULE_DELETE, name))
    return Response(status_code=204)


@router.post("/{name}/pause", response_model=ScheduleOut)
async def pause_schedule(
    name: str, request: Request, who: Admin, tenant: TenantParam = None
) -> ScheduleOut:
    where = home(who, tenant)
    paused = await schedules(request).pause(
        where, name, True, audit=entry(request, who, Action.SCHEDULE_PAUSE, name))
    return ScheduleOut.of(paused)


@router.post("/{name}/resume", response_model=ScheduleOut)
async def resume_schedule(
    name: str, request: Request, who: Admin, tenant: TenantParam = None
) -> ScheduleOut:
    """Fires again from now on; what fell in the pause is not caught up."""
    where = home(who, tenant)
    resumed = await schedules(request).pause(
        where, name, False, audit=entry(request, who, Action.SCHEDULE_RESUME, name))
    return ScheduleOut.of(resumed)


@router.post("/{name}/trigger", response_model=FireOut, status_code=201)
async def trigger_schedule(
    name: str, request: Request, who: Admin, tenant: TenantParam = None
) -> FireOut:
    """Fire now, once, outside the trigger and whatever the overlap policy."""
    where = home(who, tenant)
    return FireOut.of(await schedules(request).trigger(
        where, name, audit=entry(request, who, Action.SCHEDULE_TRIGGER, name)))


@router.post("/{name}/backfill", response_model=BackfillOut)
async def backfill_schedule(
    name: str, body: BackfillIn, request: Request, who: Admin, tenant: TenantParam = None
) -> BackfillOut:
    """Fire each fire time of [from, to] once (at most 10,000); fires already recorded are
    left as they are."""
    where = home(who, tenant)
    start = utc_seconds(body.start, "from") or 0.0
    end = utc_seconds(body.end, "to") or 0.0
    asked = entry(request, who, Action.SCHEDULE_BACKFILL, name,
                  f"from {body.start.isoformat()} to {body.end.isoformat()}")
    return BackfillOut.of(await schedules(request).backfill(where, name, start, end,
                                                            audit=asked))


@router.get("/{name}/fires", response_model=FireList)
async def schedule_fires(
    name: str, request: Request, who: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[datetime | None, Query(description="fires before this time")] = None,
    tenant: TenantParam = None,
) -> FireList:
    """History, newest fire first: fire time, outcome and the task it created."""
    found = await schedules(request).fires(home(who, tenant), name, limit,
                                           utc_seconds(before, "before"))
    return FireList(fires=[FireOut.of(f) for f in found])
