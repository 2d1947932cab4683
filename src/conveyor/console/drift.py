"""Drift between SQL and the coordination backend, as the repairing duties see it: PENDING
rows that no queue holds (the orphan sweeper re-queues them) and PROCESSING tasks on workers
that are no longer live (the recoverer reclaims them).

Read-only and bounded: at most ``MAX_SCAN`` PENDING rows, oldest first, through the orphan
sweeper's own page query and the queues' ``tracked`` check, and at most ``MAX_WORKERS``
workers of the durable history; only rows older than ``scheduler.orphan_min_age`` count, so a
create in flight is not reported. Rows of other tenants are left out for a tenant-bound key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from conveyor.console.routing import ConsoleRoute
from conveyor.console.views import Viewer, Viewing
from conveyor.models import Task
from conveyor.placement import queue_item

router = APIRouter(route_class=ConsoleRoute)
MAX_SCAN = 5_000
MAX_WORKERS = 200
PAGE = 500


@dataclass(frozen=True, slots=True)
class Drift:
    unqueued: list[Task]  # PENDING, old enough, in no queue
    scanned: int
    complete: bool  # every PENDING row old enough was scanned
    stranded: dict[str, list[Task]]  # worker id (not live) → its PROCESSING tasks


def _mine(who: Viewer, tasks: list[Task]) -> list[Task]:
    return [t for t in tasks if who.sees is None or t.tenant == who.sees]


async def drift(who: Viewer) -> Drift:
    store, coord = who.service.store, who.service.coordination
    before = time.time() - who.service.settings.scheduler.orphan_min_age
    unqueued: list[Task] = []
    scanned, after, complete = 0, None, False
    while scanned < MAX_SCAN:
        page = await store.sweeps.pending_page(after, before, PAGE)
        if not page:
            complete = True
            break
        tracked = await coord.queues.tracked([queue_item(t) for t in page])
        unqueued += _mine(who, [t for t in page if t.id not in tracked])
        scanned += len(page)
        after = page[-1].id
    live = {w.worker_id for w in await coord.registry.live_workers()}
    stranded: dict[str, list[Task]] = {}
    records = await store.workers.list_worker_records()
    for record in [r for r in records if r.worker_id not in live][:MAX_WORKERS]:
        tasks = _mine(who, await store.sweeps.processing_on(record.worker_id))
        if tasks:
            stranded[record.worker_id] = tasks
    return Drift(unqueued, scanned, complete, stranded)


@router.get("/drift", response_class=HTMLResponse)
async def drift_page(who: Viewing) -> Response:
    return who.render("drift.html", drift=await drift(who), max_scan=MAX_SCAN)
