"""Prometheus metrics: task outcomes observed from lifecycle events, HTTP traffic, scrapes.

Task counters are fed by ``MetricsListener`` from the events the store emits after each committed
move (``conveyor.events``), never by calls scattered through the worker. Events are emitted in the
process that *wrote* the move (created in the API, started and finished in the worker, deadline
and crash timeouts in the scheduler), so each process counts what it wrote and the sum of a
counter over all processes equals what the store recorded.

Gauges that describe shared state (queue lengths, workers online, leadership) are not pushed
from anywhere: a ``Sampler`` (``observability.sampler``) reads them when ``Metrics.scrape`` is
called, so an idle process costs nothing and a scrape always sees the present.

Each process owns one ``Metrics`` with its own ``CollectorRegistry``: no module-level default
registry, so tests can build as many processes as they like in one interpreter.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from conveyor.events import Event, EventKind
from conveyor.models import Task

if TYPE_CHECKING:  # FastAPI only in annotations: a worker process never imports it
    from fastapi import FastAPI, params
    from starlette.responses import Response
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST

# Task attempts run from milliseconds (echo) to an hour (the default ``sleep`` timeout).
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)
# Queue waits: sub-second when the fleet keeps up, minutes when it does not.
WAIT_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

UNMATCHED_ROUTE = "<unmatched>"


class RefreshingCollector(Collector):
    """A collector whose values need I/O: ``refresh`` runs before each scrape, ``collect``
    then only reads what it stored (prometheus-client calls ``collect`` synchronously)."""

    async def refresh(self) -> None:
        """Read what the next ``collect`` reports; nothing by default."""


class Metrics:
    """All metric families of one process, in one private registry.

    ``tenant_label`` (the ``metrics.tenant_label`` setting) puts a ``tenant`` label before
    ``type`` on every per-task family; off, the families keep the labels they always had."""

    def __init__(self, *, refresh_timeout: float = 2.0, tenant_label: bool = False) -> None:
        self.registry = CollectorRegistry()
        self.refresh_timeout = refresh_timeout
        self.tenant_label = tenant_label
        self._samplers: list[RefreshingCollector] = []
        r = self.registry
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        ProcessCollector(registry=r)
        task = ["tenant", "type"] if tenant_label else ["type"]
        self.tasks_created = Counter(
            "conveyor_tasks_created", "Tasks created by this process.", task, registry=r
        )
        self.tasks_started = Counter(
            "conveyor_tasks_started", "Attempts started by this process.", task, registry=r
        )
        self.tasks_finished = Counter(
            "conveyor_tasks_finished",
            "Tasks this process moved to a final status (SUCCESS, FAILED, TIMEOUT, CANCELLED).",
            [*task, "status"], registry=r,
        )
        self.tasks_retried = Counter(
            "conveyor_tasks_retried",
            "Failed or timed-out attempts this process sent back to PENDING for a retry.",
            task, registry=r,
        )
        self.tasks_manual_retries = Counter(
            "conveyor_tasks_manual_retries",
            "Finished tasks reopened by a user's retry request.", task, registry=r,
        )
        self.task_duration = Histogram(
            "conveyor_task_duration_seconds",
            "How long attempts ran, from start to their outcome.", task,
            buckets=DURATION_BUCKETS, registry=r,
        )
        self.queue_wait = Histogram(
            "conveyor_task_queue_wait_seconds",
            "From when an attempt was due (creation, delay or retry backoff) to its start.",
            task, buckets=WAIT_BUCKETS, registry=r,
        )
        self.http_requests = Counter(
            "conveyor_http_requests", "HTTP requests answered, by route template.",
            ["method", "route", "status"], registry=r,
        )
        self.http_duration = Histogram(
            "conveyor_http_request_duration_seconds", "HTTP request latency by route template.",
            ["route"], buckets=HTTP_BUCKETS, registry=r,
        )

    def task_labels(self, task: Task) -> tuple[str, ...]:
        """The leading label values of a per-task family for ``task``."""
        return (task.tenant, task.task_type) if self.tenant_label else (task.task_type,)

    def add(self, collector: Collector) -> None:
        """Register a collector that reads its values without I/O (``resources``)."""
        self.registry.register(collector)

    def observe(self, sampler: RefreshingCollector) -> None:
        """Register a sampler: it is refreshed before, and collected during, every scrape."""
        self.registry.register(sampler)
        self._samplers.append(sampler)

    async def refresh(self) -> None:
        """Refresh every sampler, each bounded by ``refresh_timeout`` so a hung backend makes
        a scrape stale rather than stuck; a sampler reports its own failure as a gauge."""
        for sampler in self._samplers:
            try:
                async with asyncio.timeout(self.refresh_timeout):
                    await sampler.refresh()
            except Exception as exc:  # the scrape still answers with what it has
                log.warning("metrics sampler %s failed: %r", type(sampler).__name__, exc)

    def render(self) -> bytes:
        """The exposition text of what the registry holds now (no refresh)."""
        return generate_latest(self.registry)

    async def scrape(self) -> bytes:
        await self.refresh()
        return self.render()


class MetricsListener:
    """The ``events.Listener`` that turns lifecycle events into task counters and histograms.

    Counts follow what the store wrote: ``finished{status}`` counts moves into a final status,
    ``retried`` counts attempts that went straight back to PENDING, ``manual_retries`` counts
    user retries of finished tasks (those leave a final status, so the store's count of that
    status is ``finished{status}`` minus the manual retries out of it).
    """

    def __init__(self, metrics: Metrics) -> None:
        self._m = metrics
        # Each family's child per label values, found once: ``labels()`` checks and converts
        # its values under a lock, at every event (two per task, each a counter and a timing).
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        self._handlers: dict[EventKind, Callable[[Event], None]] = {
            EventKind.CREATED: self._created,
            EventKind.STARTED: self._started,
            EventKind.RETRYING: self._retrying,
            EventKind.SUCCEEDED: self._finished,
            EventKind.FAILED: self._finished,
            EventKind.TIMED_OUT: self._finished,
            EventKind.CANCELLED: self._finished,
        }

    def notify(self, event: Event) -> None:
        self._handlers[event.kind](event)

    def _child(self, family: MetricWrapperBase, *values: str) -> Any:
        key = (id(family), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*values)
        return child

    def _created(self, event: Event) -> None:
        self._child(self._m.tasks_created, *self._m.task_labels(event.task)).inc()

    def _started(self, event: Event) -> None:
        task = event.task
        labels = self._m.task_labels(task)
        self._child(self._m.tasks_started, *labels).inc()
        started = task.started_at if task.started_at is not None else event.at
        # run_at, not created_at: a delayed task or a retry in backoff is not waiting in a
        # queue before it is due. Clamped because run_at and started_at may come from two
        # hosts' clocks.
        self._child(self._m.queue_wait, *labels).observe(max(0.0, started - task.run_at))

    def _retrying(self, event: Event) -> None:
        task = event.task
        if task.error is None:
            # ``reopen`` clears the error; an attempt that failed into a retry always has one.
            self._child(self._m.tasks_manual_retries, *self._m.task_labels(task)).inc()
            return
        self._child(self._m.tasks_retried, *self._m.task_labels(task)).inc()
        self._observe_attempt(task, event.at)

    def _finished(self, event: Event) -> None:
        task = event.task
        self._child(self._m.tasks_finished, *self._m.task_labels(task), str(task.status)).inc()
        if event.kind is not EventKind.CANCELLED or attempt_was_running(task):
            self._observe_attempt(task, task.finished_at or event.at)

    def _observe_attempt(self, task: Task, ended: float) -> None:
        if task.started_at is not None:
            duration = max(0.0, ended - task.started_at)
            self._child(self._m.task_duration, *self._m.task_labels(task)).observe(duration)


def attempt_was_running(task: Task) -> bool:
    """Whether a CANCELLED task was cancelled while running (not while PENDING).

    A pending task can carry a ``started_at`` from an earlier attempt, but that attempt ended
    before the task became due again (a retry or a reopen sets ``run_at`` after it), so only a
    start at or after ``run_at`` belongs to the attempt that was just cancelled.
    """
    return task.started_at is not None and task.started_at >= task.run_at


class HttpMetrics:
    """ASGI middleware counting requests and timing them per route *template*.

    The template (``/api/v1/tasks/{task_id}``), not the raw path, is the label: raw paths would
    make one series per task id. Unmatched paths share one label.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._m = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = route_template(scope)
            self._m.http_requests.labels(scope["method"], route, str(status)).inc()
            self._m.http_duration.labels(route).observe(time.perf_counter() - began)


def route_template(scope: Scope) -> str:
    """The path template of the route that answered, e.g. ``/api/v1/tasks/{task_id}``.

    FastAPI records the matched route in ``scope["route"]``, but that route's own path lacks
    any prefix given to ``include_router``; so the template is rebuilt from the request path,
    each segment that carries a path parameter replaced by the parameter's name. Should a
    parameter span segments, the route's own path is used: possibly short of a prefix, but
    bounded. Plain Starlette routes (``/docs``) are matched against the application's routes.
    """
    route = scope.get("route")
    if route is not None:
        template = _substitute(scope["path"], scope.get("path_params") or {})
        return template or str(getattr(route, "path_format", getattr(route, "path", "")))
    from starlette.routing import Match  # imported by the app that answered

    app = scope.get("app")
    for candidate in getattr(app, "routes", None) or ():
        matches = getattr(candidate, "matches", None)
        if matches is not None and matches(scope)[0] is Match.FULL:
            return str(getattr(candidate, "path", UNMATCHED_ROUTE))
    return UNMATCHED_ROUTE


def _substitute(path: str, params: Mapping[str, object]) -> str | None:
    """``path`` with each parameter's segment named; None unless every parameter was found."""
    names = {str(value): name for name, value in params.items()}
    segments = [f"{{{names[s]}}}" if s in names else s for s in path.split("/")]
    found = {s[1:-1] for s in segments if s.startswith("{") and s[1:-1] in params}
    return "/".join(segments) if found == set(params) else None


async def metrics_response(metrics: Metrics) -> Response:
    """A refreshed scrape as a Starlette response, shared by the API and ``MetricsServer``
    (Starlette is imported by whichever serves it: a worker without a metrics port never)."""
    from starlette.responses import Response

    return Response(await metrics.scrape(), media_type=CONTENT_TYPE)


def add_metrics_route(app: FastAPI, metrics: Metrics, *guards: params.Depends) -> None:
    """Serve ``GET /metrics`` on the API, outside the OpenAPI schema (it is not JSON).

    ``guards`` are the dependencies that decide who may scrape (the API's own key check): the
    scrape names worker hosts and pids, so it is not public.
    """

    from starlette.responses import Response

    async def scrape() -> Response:
        return await metrics_response(metrics)

    app.add_api_route(
        "/metrics", scrape, methods=["GET"], include_in_schema=False, response_class=Response,
        response_model=None,  # what ``-> Response`` says, which FastAPI cannot resolve here
        dependencies=list(guards),
    )
