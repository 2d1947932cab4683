"""The web console at ``/ui``: server-rendered pages (Jinja2) over the same services the API
uses, live parts polled with htmx, a uPlot chart; every asset ships in ``static/`` (vendored
by ``scripts/vendor-console-assets.sh``), so it works without internet access.

``install`` adds it to an API app. The key cookie and form bodies need the two hooks in the
app's middleware that ``api.app`` passes: ``Authenticate(console=session.KEY_COOKIE)`` and
``RequestGuard(forms=session.PREFIX)``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from conveyor.console import (
    bulk,
    configs,
    drift,
    fleet,
    login,
    overview,
    session,
    tasks,
    workflows,
)
from conveyor.console.snapshot import Snapshots
from conveyor.console.views import HERE

KEY_COOKIE = session.KEY_COOKIE
PREFIX = session.PREFIX


def install(app: FastAPI, *, auth_required: bool) -> None:
    service = app.state.service
    app.state.console_auth = auth_required
    app.state.console_snapshots = Snapshots(app.state.operations, service)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-assets")
    # bulk before tasks: /tasks/bulk is a page, not a task id
    for part in (overview, bulk, tasks, fleet, configs, drift, workflows, login):
        app.include_router(part.router, prefix=PREFIX, include_in_schema=False)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse(PREFIX, status_code=307)
