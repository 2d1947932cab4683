"""The overview: counts by state, queue depth and oldest due age per priority, queue wait and
run time percentiles, workers, the leader and its lease, alerts, and a chart of created /
started / succeeded / failed / retried tasks per second. The page polls ``/ui/overview/live`` each
second (htmx); the fragment carries the current rates as data attributes, which
``static/console.js`` appends to the uPlot chart."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from conveyor.console.routing import ConsoleRoute
from conveyor.console.snapshot import TIMING_SAMPLE, Snapshots
from conveyor.console.views import Viewing

router = APIRouter(route_class=ConsoleRoute)


def snapshots(who: Viewing) -> Snapshots:
    found: Snapshots = who.request.app.state.console_snapshots
    return found


@router.get("", response_class=HTMLResponse)
async def overview(who: Viewing) -> HTMLResponse:
    snap = await snapshots(who).get(who.sees)
    return who.render("overview.html", snap=snap, sample=TIMING_SAMPLE)


@router.get("/overview/live", response_class=HTMLResponse)
async def live(who: Viewing) -> HTMLResponse:
    snap = await snapshots(who).get(who.sees)
    return who.render("overview_live.html", snap=snap, sample=TIMING_SAMPLE)
