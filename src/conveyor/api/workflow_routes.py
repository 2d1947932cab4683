"""REST routes for workflows under ``/api/v1/workflows`` (docs/design.md §10)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from conveyor.api.auth import Reader, Submitter, acting
from conveyor.api.task_routes import ERRORS, QUOTA, service
from conveyor.api.tenancy import TenantParam, home, reach
from conveyor.api.workflow_schemas import (
    WorkflowCreated,
    WorkflowIn,
    WorkflowList,
    WorkflowOut,
    WorkflowSummary,
)
from conveyor.workflow_service import WorkflowService

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["workflows"])


def workflows(request: Request) -> WorkflowService:
    return WorkflowService(service(request))


@router.post("/workflows", status_code=201, response_model=WorkflowCreated,
             responses={429: QUOTA})
async def create_workflow(
    body: WorkflowIn, request: Request, who: Submitter, tenant: TenantParam = None
) -> WorkflowCreated:
    """Every node in one transaction: nodes without ``after`` start PENDING, the others
    WAITING. A cycle, an unknown ``after`` name or more than 10,000 nodes is 422 naming the
    offenders, and nothing is written."""
    nodes = {name: node.to_node() for name, node in body.tasks.items()}
    flow, _ = await workflows(request).create(body.name, nodes, who, home(who, tenant))
    return WorkflowCreated(workflow_id=flow.id, nodes=flow.nodes)


@router.get("/workflows", response_model=WorkflowList)
async def list_workflows(
    request: Request, who: Reader,
    name: Annotated[str | None, Query(max_length=255)] = None,
    cursor: Annotated[str | None, Query(max_length=26)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    tenant: TenantParam = None,
) -> WorkflowList:
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""
    found = await workflows(request).list_workflows(reach(who, tenant), name, cursor, limit + 1)
    more = len(found) > limit
    page = found[:limit]
    return WorkflowList(workflows=[WorkflowSummary.of(f) for f in page],
                        next_cursor=page[-1].id if more else None)


@router.get("/workflows/{workflow_id}", response_model=WorkflowOut)
async def get_workflow(workflow_id: str, request: Request, who: Reader) -> WorkflowOut:
    return WorkflowOut.of(await workflows(request).get(workflow_id, who.sees))


@router.post("/workflows/{workflow_id}/cancel", response_model=WorkflowOut)
async def cancel_workflow(workflow_id: str, request: Request, who: Submitter) -> WorkflowOut:
    """Cancel waiting and pending nodes at once and signal running ones."""
    view = await workflows(request).cancel(workflow_id, who, actor=acting(who, request))
    return WorkflowOut.of(view)


@router.post("/workflows/{workflow_id}/retry", response_model=WorkflowOut)
async def retry_workflow(workflow_id: str, request: Request, who: Submitter) -> WorkflowOut:
    """Reopen failed nodes and their cancelled descendants."""
    view = await workflows(request).retry(workflow_id, who, actor=acting(who, request))
    return WorkflowOut.of(view)
