"""Queues (pending per priority and per type, pause / resume, the task configs), workers
(live and the durable history, the drain of one) and schedules, read through ``Operations``
and the services the API uses, with the caller's tenant filter."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.api.auth import acting
from conveyor.console import session
from conveyor.console.overview import snapshots
from conveyor.console.routing import ConsoleRoute, back
from conveyor.console.snapshot import PENDING_SCAN
from conveyor.console.views import Viewer, Viewing
from conveyor.models import Priority, TaskStatus
from conveyor.schedules.service import ScheduleService

router = APIRouter(route_class=ConsoleRoute)


@router.get("/queues", response_class=HTMLResponse)
async def queues(who: Viewing) -> Response:
    snap = await snapshots(who).get(who.sees)  # the overview's numbers: one read shared
    state, stats = snap.queues, snap.stats
    pending = str(TaskStatus.PENDING)
    types = sorted(set(stats.by_type) | {p for p in state.paused if p not in PRIORITIES})
    by_type = {t: stats.by_type.get(t, {}).get(pending, 0) for t in types}
    configs = await who.service.list_configs(who.sees)
    return who.render("queues.html", state=state, priorities=PRIORITIES, by_type=by_type,
                      configs=configs, due=snap.due, scan=PENDING_SCAN)


PRIORITIES = [p.label for p in sorted(Priority, reverse=True)]


async def _set_paused(who: Viewer, name: str, paused: bool) -> Response:
    fields = await session.checked_form(who.request)
    who.need(who.can_steer, "pause or resume queues (every tenant's work)")
    await who.operations.set_paused(name, paused, who.sees,
                                    actor=acting(who.principal, who.request))
    snapshots(who).invalidate()
    return RedirectResponse(back(fields, f"{session.PREFIX}/queues"), status_code=303)


@router.post("/queues/{name}/pause")
async def pause(name: str, who: Viewing) -> Response:
    return await _set_paused(who, name, True)


@router.post("/queues/{name}/resume")
async def resume(name: str, who: Viewing) -> Response:
    return await _set_paused(who, name, False)


@router.get("/workers", response_class=HTMLResponse)
async def workers(who: Viewing) -> Response:
    ops = who.operations
    return who.render("workers.html", live=await ops.live_workers(who.sees),
                      history=await ops.worker_records(who.sees))


@router.post("/workers/{worker_id}/drain")
async def drain(worker_id: str, who: Viewing) -> Response:
    """As ``POST /api/v1/workers/{id}/drain``: the worker finishes what it runs and idles."""
    await session.checked_form(who.request)
    who.need(who.can_steer, "drain workers (they run every tenant's work)")
    await who.operations.drain(worker_id)
    snapshots(who).invalidate()
    return RedirectResponse(f"{session.PREFIX}/workers", status_code=303)


@router.get("/schedules", response_class=HTMLResponse)
async def schedules(who: Viewing) -> Response:
    service: ScheduleService = who.request.app.state.schedules
    return who.render("schedules.html", schedules=await service.list_schedules(who.sees))
