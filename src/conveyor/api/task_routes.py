"""REST routes under ``/api/v1``: tasks, logs and task configs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from conveyor.api.auth import Admin, Reader, Submitter, acting
from conveyor.api.lean import LeanRoute, lean
from conveyor.api.schemas import (
    BatchCreate,
    BatchOut,
    ErrorOut,
    LogList,
    LogOut,
    PriorityPatch,
    TaskConfigIn,
    TaskConfigList,
    TaskConfigOut,
    TaskList,
    TaskOut,
    TaskSummaryOut,
    created_json,
    parse_priority,
    utc_seconds,
)
from conveyor.api.tenancy import TenantParam, home, reach
from conveyor.api.workflow_schemas import TaskCreateOne, WorkflowCreated
from conveyor.apikeys import Scope
from conveyor.errors import ValidationError
from conveyor.models import TaskStatus, check_task_type
from conveyor.service import TaskService
from conveyor.shards import create_sharded
from conveyor.store.protocol import BIG_FIELDS, ListRequest, Page, TaskFilter

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorOut} for code in (401, 403, 404, 409, 413, 422, 503)
}

QUOTA: dict[str, object] = {
    "model": ErrorOut,
    "description": "a quota of the caller's tenant (max_pending, creates_per_second) refused "
                   "the request; nothing was written; retry after the Retry-After seconds",
}

UTC_NOTE = "ISO 8601; a time without an offset is UTC"
INCLUDE_NOTE = "comma-separated big fields to add to each row: payload, result"

router = APIRouter(prefix="/api/v1", responses=ERRORS)
# The two create routes: served by ``lean.serve``, documented as any route.
creates = APIRouter(prefix="/api/v1", responses=ERRORS, route_class=LeanRoute)
JSON = "application/json"


def service(request: Request) -> TaskService:
    svc: TaskService = request.app.state.service
    return svc


@creates.post(
    "/tasks", status_code=201, response_model=TaskOut | WorkflowCreated, tags=["tasks"],
    responses={200: {"model": TaskOut, "description": "an idempotency key matched"},
               429: QUOTA},
)
@lean(TaskCreateOne, Scope.SUBMIT)
async def create_task(
    body: TaskCreateOne, request: Request, who: Submitter, tenant: TenantParam = None,
) -> Response:
    """Create one task. The same idempotency key for the same type in the same tenant returns
    the existing task with 200 instead of 201. With ``shards``: a workflow of that many shard
    tasks (and the ``then`` task after them); with ``broadcast``: of one copy per live worker
    of the type (422 when there is none); both answered like ``POST /api/v1/workflows``."""
    sharding = body.sharding()
    if sharding is not None:
        flow, _ = await create_sharded(service(request), sharding, who, home(who, tenant))
        created = WorkflowCreated(workflow_id=flow.id, nodes=flow.nodes)
        return Response(created.model_dump_json(), 201, media_type=JSON)
    [one] = await service(request).submit([body.to_spec()], who, home(who, tenant))
    answer = orjson.dumps(created_json(one.task, one.created))
    return Response(answer, 201 if one.created else 200, media_type=JSON)


@creates.post(
    "/tasks/batch", status_code=201, response_model=BatchOut, tags=["tasks"],
    responses={429: QUOTA},
)
@lean(BatchCreate, Scope.SUBMIT)
async def create_tasks(
    body: BatchCreate, request: Request, who: Submitter, tenant: TenantParam = None
) -> Response:
    """Create up to 1,000 tasks in one request and one transaction."""
    created = await service(request).submit(
        [t.to_spec() for t in body.tasks], who, home(who, tenant)
    )
    answer = orjson.dumps({"tasks": [created_json(c.task, c.created) for c in created]})
    return Response(answer, 201, media_type=JSON)


@router.get("/tasks", response_model=TaskList, tags=["tasks"])
async def list_tasks(
    request: Request,
    who: Reader,
    status: Annotated[TaskStatus | None, Query()] = None,
    task_type: Annotated[str | None, Query(alias="type", max_length=128)] = None,
    created_from: Annotated[datetime | None, Query(description=UTC_NOTE)] = None,
    created_to: Annotated[datetime | None, Query(description=UTC_NOTE)] = None,
    cursor: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    include: Annotated[str | None, Query(max_length=64, description=INCLUDE_NOTE)] = None,
    tenant: TenantParam = None,
) -> StreamingResponse:
    """Task summaries, newest first; pass ``next_cursor`` back as ``cursor`` for the next
    page. Payloads and results come only when included, and then a page stops early once
    they reach the server's ``max_list_bytes``. The answer is streamed row by row."""
    if task_type is not None:
        check_task_type(task_type)
    where = TaskFilter(
        tenant=reach(who, tenant), status=status, task_type=task_type,
        created_from=utc_seconds(created_from, "created_from"),
        created_to=utc_seconds(created_to, "created_to"),
    )
    svc = service(request)
    ask = ListRequest(where, cursor, limit, included(include), svc.settings.max_list_bytes)
    page = await svc.list_tasks(ask)
    return StreamingResponse(streamed(page), media_type="application/json")


def included(text: str | None) -> frozenset[str]:
    names = frozenset(n.strip() for n in (text or "").split(",") if n.strip())
    if unknown := names - BIG_FIELDS:
        raise ValidationError(
            f"include: unknown field(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(sorted(BIG_FIELDS))}"
        )
    return names


async def streamed(page: Page) -> AsyncIterator[bytes]:
    """The ``TaskList`` JSON one row at a time, each row dropped once sent, so the answer is
    never held whole as text."""
    yield b'{"tasks":['
    rows = page.tasks
    rows.reverse()
    first = True
    while rows:
        yield (b"" if first else b",") + TaskSummaryOut.listed(rows.pop(), page.include)
        first = False
    yield b'],"next_cursor":' + orjson.dumps(page.next_cursor) + b"}"


@router.get("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"])
async def get_task(task_id: str, request: Request, who: Reader) -> TaskOut:
    return TaskOut.of(await service(request).get(task_id, who.sees))


@router.patch("/tasks/{task_id}", response_model=TaskOut, tags=["tasks"])
async def patch_task(
    task_id: str, body: PriorityPatch, request: Request, who: Submitter
) -> TaskOut:
    """Change the priority of a PENDING task."""
    priority = parse_priority(body.priority)
    if priority is None:
        raise ValidationError("priority is required")
    changed = await service(request).set_priority(
        task_id, priority, who, actor=acting(who, request)
    )
    return TaskOut.of(changed)


@router.post(
    "/tasks/{task_id}/cancel", response_model=TaskOut, tags=["tasks"],
    responses={202: {"model": TaskOut, "description": "running: its worker was signalled"}},
)
async def cancel_task(
    task_id: str, request: Request, response: Response, who: Submitter
) -> TaskOut:
    """A PENDING task is cancelled at once (200); a running one is signalled (202) and its
    worker records CANCELLED within about a second."""
    result = await service(request).cancel(task_id, who, actor=acting(who, request))
    response.status_code = 202 if result.requested else 200
    return TaskOut.of(result.task, cancel_requested=result.requested)


@router.post("/tasks/{task_id}/retry", response_model=TaskOut, tags=["tasks"])
async def retry_task(task_id: str, request: Request, who: Submitter) -> TaskOut:
    """Reopen a FAILED, TIMEOUT or CANCELLED task as a new attempt with its retries restored."""
    return TaskOut.of(await service(request).retry(task_id, who, actor=acting(who, request)))


@router.get("/tasks/{task_id}/logs", response_model=LogList, tags=["tasks"])
async def task_logs(task_id: str, request: Request, who: Reader) -> LogList:
    logs = await service(request).logs(task_id, who.sees)
    return LogList(task_id=task_id, logs=[LogOut.of(x) for x in logs])


@router.get("/task-configs", response_model=TaskConfigList, tags=["task configs"])
async def list_configs(
    request: Request, who: Reader, tenant: TenantParam = None
) -> TaskConfigList:
    configs = await service(request).list_configs(reach(who, tenant))
    return TaskConfigList(configs=[TaskConfigOut.of(c) for c in configs])


@router.get("/task-configs/{task_type}", response_model=TaskConfigOut, tags=["task configs"])
async def get_config(
    task_type: str, request: Request, who: Reader, tenant: TenantParam = None
) -> TaskConfigOut:
    found = await service(request).get_config(check_task_type(task_type), home(who, tenant))
    return TaskConfigOut.of(found)


@router.put("/task-configs/{task_type}", response_model=TaskConfigOut, tags=["task configs"])
async def put_config(
    task_type: str, body: TaskConfigIn, request: Request, who: Admin, tenant: TenantParam = None
) -> TaskConfigOut:
    """Create or replace the config of a task type (admin key).

    Secret fields of `executor_config` (every value of http `headers` and grpc `metadata`,
    and the fields a plug-in executor declares) are stored encrypted and always answered as
    `"***"`. Sending `"***"` for a secret keeps the value already stored at that place, so a
    config read with GET, changed in one field and PUT back keeps its credentials; sending
    `"***"` where nothing is stored is a 422. Without `secrets.keys` on a MariaDB or PostgreSQL
    store, a config carrying a secret is refused with 422 (a SQLite store uses a key file
    beside the database).
    """
    config = body.to_config(check_task_type(task_type), time.time(), home(who, tenant))
    saved = await service(request).put_config(config, actor=acting(who, request))
    return TaskConfigOut.of(saved)


@router.delete("/task-configs/{task_type}", status_code=204, tags=["task configs"])
async def delete_config(
    task_type: str, request: Request, who: Admin, tenant: TenantParam = None
) -> Response:
    await service(request).delete_config(
        check_task_type(task_type), home(who, tenant), actor=acting(who, request)
    )
    return Response(status_code=204)
