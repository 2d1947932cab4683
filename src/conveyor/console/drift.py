"""The drift page: what ``drift_scan`` reads now, and the counts the snapshot sampled over
time (a uPlot chart drawn by ``static/console.js`` from the page's data attribute)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from conveyor.console.drift_scan import DRIFT_STEP, MAX_HEADS, MAX_SCAN
from conveyor.console.overview import snapshots
from conveyor.console.routing import ConsoleRoute
from conveyor.console.views import Viewing

router = APIRouter(route_class=ConsoleRoute)


@router.get("/drift", response_class=HTMLResponse)
async def drift_page(who: Viewing) -> Response:
    now = await snapshots(who).drift(who.sees)
    history = snapshots(who).drift_history(who.sees)
    samples = [[s.at for s in history], [len(s.unqueued) for s in history],
               [len(s.unrowed) for s in history], [s.stranded_count for s in history]]
    return who.render("drift.html", drift=now, max_scan=MAX_SCAN,
                      max_heads=MAX_HEADS, samples=orjson.dumps(samples).decode(),
                      step=DRIFT_STEP)
