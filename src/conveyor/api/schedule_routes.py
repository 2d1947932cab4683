"""REST routes for schedules under ``/api/v1/schedules``: every route sees only the caller's
tenant, so another tenant's schedule is 404 like a missing one."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from conveyor.api.auth import Admin, Reader
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
from conveyor.schedules.service import ScheduleService

router = APIRouter(prefix="/api/v1/schedules", responses=ERRORS, tags=["schedules"])


def schedules(request: Request) -> ScheduleService:
    svc: ScheduleService = request.app.state.schedules
    return svc


@router.get("", response_model=ScheduleList)
async def list_schedules(request: Request, who: Reader) -> ScheduleList:
    """The tenant's schedules by name, each with its next fire time."""
    found = await schedules(request).list_schedules(who.tenant)
    return ScheduleList(schedules=[ScheduleOut.of(s) for s in found])


@router.put("/{name}", response_model=ScheduleOut, status_code=200,
            responses={201: {"model": ScheduleOut, "description": "created"}})
async def put_schedule(
    name: str, body: ScheduleIn, request: Request, response: Response, who: Admin
) -> ScheduleOut:
    """Create or replace a schedule. A replace that keeps the trigger keeps the next fire."""
    # integrator: audit row (schedule.put, target name)
    saved, created = await schedules(request).put(body.to_schedule(who.tenant, name))
    response.status_code = 201 if created else 200
    return ScheduleOut.of(saved, created=created)


@router.get("/{name}", response_model=ScheduleOut)
async def get_schedule(name: str, request: Request, who: Reader) -> ScheduleOut:
    return ScheduleOut.of(await schedules(request).get(who.tenant, name))


@router.delete("/{name}", status_code=204)
async def delete_schedule(name: str, request: Request, who: Admin) -> Response:
    """The schedule and its fire history; tasks it created stay."""
    # integrator: audit row (schedule.delete)
    await schedules(request).delete(who.tenant, name)
    return Response(status_code=204)


@router.post("/{name}/pause", response_model=ScheduleOut)
async def pause_schedule(name: str, request: Request, who: Admin) -> ScheduleOut:
    # integrator: audit row (schedule.pause)
    return ScheduleOut.of(await schedules(request).pause(who.tenant, name, True))


@router.post("/{name}/resume", response_model=ScheduleOut)
async def resume_schedule(name: str, request: Request, who: Admin) -> ScheduleOut:
    """Fires again from now on; what fell in the pause is not caught up."""
    # integrator: audit row (schedule.resume)
    return ScheduleOut.of(await schedules(request).pause(who.tenant, name, False))


@router.post("/{name}/trigger", response_model=FireOut, status_code=201)
async def trigger_schedule(name: str, request: Request, who: Admin) -> FireOut:
    """Fire now, once, outside the trigger and whatever the overlap policy."""
    # integrator: audit row (schedule.trigger)
    return FireOut.of(await schedules(request).trigger(who.tenant, name))


@router.post("/{name}/backfill", response_model=BackfillOut)
async def backfill_schedule(
    name: str, body: BackfillIn, request: Request, who: Admin
) -> BackfillOut:
    """Fire each fire time of [from, to] once (at most 10,000); fires already recorded are
    left as they are."""
    # integrator: audit row (schedule.backfill, with the range)
    start = utc_seconds(body.start, "from") or 0.0
    end = utc_seconds(body.end, "to") or 0.0
    return BackfillOut.of(await schedules(request).backfill(who.tenant, name, start, end))


@router.get("/{name}/fires", response_model=FireList)
async def schedule_fires(
    name: str, request: Request, who: Reader,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[datetime | None, Query(description="fires before this time")] = None,
) -> FireList:
    """History, newest fire first: fire time, outcome and the task it created."""
    found = await schedules(request).fires(who.tenant, name, limit,
                                           utc_seconds(before, "before"))
    return FireList(fires=[FireOut.of(f) for f in found])
