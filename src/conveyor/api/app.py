"""The FastAPI application: routes, error mapping, request guards, health.

Middleware, outermost first: the request's trace span (``task_spans.TraceRequests``, a no-op
with tracing off) → HTTP metrics (counts refusals too) → ``RequestGuard`` (Host,
Origin, content type) → ``Authenticate`` (the key, from the headers) → ``BodyLimit`` (size and
time) → ``FastLane`` (the two create routes, past the router) → routes. So nothing reads a body
before the caller is known to be allowed.
"""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

from fastapi import Depends, FastAPI, Request

from conveyor import console
from conveyor.api import (
    audit_routes,
    docs,
    errors,
    key_routes,
    operation_routes,
    schedule_routes,
    task_routes,
    workflow_routes,
)
from conveyor.api.auth import Authenticate, scraper_or_reader
from conveyor.api.fast import FastLane
from conveyor.api.guard import RequestGuard
from conveyor.api.limits import BodyLimit
from conveyor.api.schemas import ErrorOut
from conveyor.observability.metrics import HttpMetrics, Metrics, add_metrics_route
from conveyor.observability.task_spans import TraceRequests
from conveyor.operations import Operations
from conveyor.schedules.service import ScheduleService
from conveyor.service import TaskService
from conveyor.serving import check_backends


def own_telemetry_off() -> dict[str, Any]:
    """FastAPI 0.165+ makes OpenTelemetry spans of its own whenever a provider is set; off,
    so the request spans are ``TraceRequests``'s alone, named alike with any FastAPI."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False,
                          "operation_spans": False, "auto_configure": False}}


def create_app(
    service: TaskService, *, auth_required: bool = False, metrics: Metrics | None = None,
    hosts: frozenset[str] | None = None,
) -> FastAPI:
    """``hosts``: the ``Host`` names served (``guard.served_hosts``); None accepts any, for
    in-process transports no browser can reach."""
    server = service.settings.server
    app = FastAPI(
        title="Conveyor",
        version=version("conveyor"),
        description="Distributed asynchronous tasks: create, query, cancel, retry.",
        docs_url=None,  # docs.install serves both pages from the package, not from a CDN
        redoc_url=None,
        **own_telemetry_off(),
    )
    app.state.service = service
    app.state.schedules = ScheduleService(service, service.clock)
    store = service.store
    app.state.operations = Operations(
        store.workers, store.stats, service.coordination, store.audit, store.configs
    )
    app.add_middleware(FastLane, routes=task_routes.creates.routes,
                       handlers=app.exception_handlers)  # added first: innermost
    app.add_middleware(
        BodyLimit, max_bytes=service.settings.max_body_bytes, timeout=server.body_timeout
    )
    app.add_middleware(Authenticate, keys=store.keys if auth_required else None,
                       console=console.KEY_COOKIE)
    app.add_middleware(RequestGuard, hosts=hosts, origins=server.allowed_origins,
                       forms=console.PREFIX)
    if metrics is not None:  # added last: outermost, so it also counts refusals
        app.add_middleware(HttpMetrics, metrics=metrics)
        add_metrics_route(app, metrics, Depends(scraper_or_reader(server.metrics_scrapers)))
    app.add_middleware(TraceRequests)  # outermost: the span covers refusals too
    errors.install(app)
    app.include_router(task_routes.creates)
    app.include_router(task_routes.router)
    app.include_router(operation_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(key_routes.router)
    app.include_router(schedule_routes.router)
    app.include_router(workflow_routes.router)
    docs.install(app)
    console.install(app, auth_required=auth_required)

    @app.get("/healthz", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], responses={503: {"model": ErrorOut}})
    async def readyz(request: Request) -> dict[str, str]:
        """The store and the coordination backend answer."""
        svc: TaskService = request.app.state.service
        await check_backends(svc.store, svc.coordination)
        return {"status": "ready"}

    return app
