"""The spans of a task's life outside its executor call, all children of the context the task
carries (``tracing``): the API request that created it, each dispatch, each committed move.

They use only ``tracing``'s functions, so with tracing off they cost a dictionary look-up.
The attempt and executor spans are opened by the worker's processor around the call itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from conveyor.events import Event
from conveyor.models import QueueItem
from conveyor.observability import tracing
from conveyor.observability.metrics import route_template
from conveyor.store.protocol import TaskRecords

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

TRACED_PREFIX = "/api/"  # probes, scrapes, docs and the console make no traces


class TraceRequests:
    """ASGI middleware: a server span per API request, child of the caller's ``traceparent``
    header when it sends one, named by route template (``POST /api/v1/tasks``). A create
    inside it stamps that context into the new tasks (``TaskService.submit``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or not tracing.enabled()
                or not str(scope["path"]).startswith(TRACED_PREFIX)):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with tracing.span(str(scope["method"]), parent=headers, server=True) as marks:
            try:
                await self.app(scope, receive, send_status)
            finally:
                marks.rename(f"{scope['method']} {route_template(scope)}")
                marks.note(http_status=status)
                if status >= 500:
                    marks.fail(f"HTTP {status}")


class MoveSpans:
    """The ``events.Listener`` recording each committed move of a traced task (created,
    started, retrying, and the final one) as a span at the moment it was written, in the
    process that wrote it: the worker's finisher, the scheduler's sweeps, the API's cancel."""

    def notify(self, event: Event) -> None:
        task = event.task
        if not tracing.enabled() or not tracing.carries_trace(task.metadata):
            return
        tracing.record(
            f"conveyor.{event.kind}", task.metadata, event.at, event.at, task_id=task.id,
            task_type=task.task_type, attempt=task.attempt, status=str(task.status),
        )


class DispatchSpans:
    """A span per task a dispatch pass moved to a worker, from the pass's start to the move.

    Queue items carry no metadata, so this reads the moved tasks' rows: one query per pass,
    made only while tracing is on. A failed read costs the spans, never the dispatch."""

    def __init__(self, tasks: TaskRecords) -> None:
        self._tasks = tasks

    async def record(self, moves: Sequence[tuple[QueueItem, str]], began: float) -> None:
        if not tracing.enabled() or not moves:
            return
        ended = time.time()
        worker_of = {item.task_id: worker for item, worker in moves}
        try:
            found = await self._tasks.get_many(list(worker_of))
        except Exception as exc:
            log.warning("no dispatch spans for %d tasks: %r", len(moves), exc)
            return
        for task in found:
            if tracing.carries_trace(task.metadata):
                tracing.record("conveyor.dispatch", task.metadata, began, ended,
                               task_id=task.id, attempt=task.attempt, worker=worker_of[task.id])
