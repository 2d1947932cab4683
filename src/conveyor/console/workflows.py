"""Workflows: the list (newest first, by name and by derived state) and a workflow's page
with its graph, node states and the cancel / retry actions, through ``WorkflowService`` with
the caller's principal (tenancy, ownership and the audit row are the API's).

A workflow's state is derived from its tasks, never stored, so a state filter reads each
listed workflow's node states: a page reads at most ``SCAN`` workflows and its cursor goes on
from the last one read, so a rare state costs a few clicks rather than a long request.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.api.auth import acting
from conveyor.console import session
from conveyor.console.graph import HEIGHT, MAX_DRAWN, WIDTH, layout
from conveyor.console.routing import ConsoleRoute
from conveyor.console.views import Viewer, Viewing
from conveyor.errors import ValidationError
from conveyor.workflow_service import WorkflowService, WorkflowView
from conveyor.workflows import Workflow, WorkflowState

router = APIRouter(route_class=ConsoleRoute)
PAGE = 50
SCAN = 200  # workflows a filtered page reads at most
Text = Annotated[str, Query(max_length=255)]


def service(who: Viewer) -> WorkflowService:
    return WorkflowService(who.service)


@router.get("/workflows", response_class=HTMLResponse)
async def workflows(who: Viewing, state: Text = "", name: Text = "", cursor: Text = "") -> Response:
    if state and state not in {str(s) for s in WorkflowState}:
        raise ValidationError(f"state: unknown workflow state {state!r}")
    svc = service(who)
    shown: list[tuple[Workflow, WorkflowState]] = []
    after, scanned, exhausted = cursor or None, 0, False
    while len(shown) < PAGE and scanned < SCAN and not exhausted:
        batch = await svc.list_workflows(who.sees, name or None, after, PAGE)
        exhausted = len(batch) < PAGE
        for i, flow in enumerate(batch):
            scanned, after = scanned + 1, flow.id
            view = await svc.get(flow.id, who.sees)
            if not state or view.state == state:
                shown.append((flow, view.state))
            if len(shown) == PAGE or scanned == SCAN:
                exhausted = exhausted and i == len(batch) - 1
                break
    return who.render("workflows.html", shown=shown, states=[str(s) for s in WorkflowState],
                      query={"state": state, "name": name}, next=None if exhausted else after,
                      scan=SCAN)


async def _page(who: Viewer, workflow_id: str) -> dict[str, Any]:
    view = await service(who).get(workflow_id, who.sees)
    nodes = {n: (t, str(s) if s is not None else "PURGED") for n, (t, s) in view.nodes.items()}
    after = view.after
    drawing = layout(nodes, after) if len(nodes) <= MAX_DRAWN else None
    return {"view": view, "nodes": nodes, "after": after, "drawing": drawing,
            "box": (WIDTH, HEIGHT), "max_drawn": MAX_DRAWN, "can_act": can_act(who, view)}


def can_act(who: Viewer, view: WorkflowView) -> bool:
    return who.can_act and who.principal.owns(view.flow.owner)


@router.get("/workflows/{workflow_id}", response_class=HTMLResponse)
async def workflow_page(workflow_id: str, who: Viewing) -> Response:
    return who.render("workflow.html", **await _page(who, workflow_id))


async def _act(who: Viewer, workflow_id: str, verb: str) -> Response:
    await session.checked_form(who.request)
    who.need(who.can_act, f"{verb} workflows")
    svc, actor = service(who), acting(who.principal, who.request)
    if verb == "cancel":
        await svc.cancel(workflow_id, who.principal, actor=actor)
    else:
        await svc.retry(workflow_id, who.principal, actor=actor)
    return RedirectResponse(f"{session.PREFIX}/workflows/{workflow_id}", status_code=303)


@router.post("/workflows/{workflow_id}/cancel")
async def cancel(workflow_id: str, who: Viewing) -> Response:
    return await _act(who, workflow_id, "cancel")


@router.post("/workflows/{workflow_id}/retry")
async def retry(workflow_id: str, who: Viewing) -> Response:
    return await _act(who, workflow_id, "retry")
