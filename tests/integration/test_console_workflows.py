"""The console's workflow pages: the list with its state and name filters, a workflow drawn
as a graph (a box per node with its state, an edge per dependency), cancel and retry with
CSRF and scope, another tenant's workflow a 404, and hostile names escaped."""

from __future__ import annotations

import re

from conveyor.apikeys import Scope
from conveyor.console.graph import layout
from conveyor.models import TaskStatus
from conveyor.service import TaskRequest
from conveyor.workflow_service import NodeRequest, WorkflowService
from tests.support.console import EVIL, Console, console, open_console

__all__ = ["console", "open_console"]  # fixtures


async def diamond(c: Console, name: str = "nightly") -> str:
    nodes = {"fetch": NodeRequest(TaskRequest("echo")),
             "left": NodeRequest(TaskRequest("echo"), ("fetch",)),
             "right": NodeRequest(TaskRequest("echo"), ("fetch",)),
             "join": NodeRequest(TaskRequest("echo"), ("left", "right"))}
    flow, _ = await WorkflowService(c.parts.service).create(name, nodes)
    return flow.id


def test_a_diamond_is_laid_out_in_layers() -> None:
    nodes = {n: (f"t-{n}", "PENDING") for n in ("a", "b", "c", "d")}
    drawing = layout(nodes, {"b": ["a"], "c": ["a"], "d": ["b", "c"]})
    columns = {b.node: b.x for b in drawing.boxes}
    assert columns["a"] < columns["b"] == columns["c"] < columns["d"]
    assert len(drawing.edges) == 4 and all(e.x1 < e.x2 for e in drawing.edges)


async def test_the_list_filters_by_state_and_name(open_console: Console) -> None:
    c = open_console
    running = await diamond(c)
    other = await diamond(c, "weekly")
    await WorkflowService(c.parts.service).cancel(other)
    page = await c.http.get("/ui/workflows")
    assert page.status_code == 200 and running in page.text and other in page.text
    assert 'href="/ui/workflows"' in page.text  # in the navigation
    assert other not in (await c.http.get("/ui/workflows", params={"state": "RUNNING"})).text
    cancelled = await c.http.get("/ui/workflows", params={"state": "CANCELLED"})
    assert other in cancelled.text and running not in cancelled.text
    named = await c.http.get("/ui/workflows", params={"name": "weekly"})
    assert other in named.text and running not in named.text
    assert (await c.http.get("/ui/workflows", params={"state": "BORED"})).status_code == 422


async def test_a_workflow_is_drawn_with_its_nodes_states_and_edges(open_console: Console) -> None:
    c = open_console
    flow_id = await diamond(c, EVIL)
    page = await c.http.get(f"/ui/workflows/{flow_id}")
    assert page.status_code == 200, page.text
    assert '<svg id="workflow-graph"' in page.text and EVIL not in page.text
    assert "&lt;script&gt;" in page.text
    assert len(re.findall(r'<path class="edge"', page.text)) == 4
    assert len(re.findall(r'<rect class="node n-(pending|waiting)"', page.text)) == 4
    assert 'data-action="Cancel workflow"' in page.text
    assert (await c.http.get("/ui/workflows/01NOTAWORKFLOW0000000000000")).status_code == 404


async def test_cancel_and_retry_from_the_page(console: Console) -> None:
    c = console
    flow_id = await diamond(c)
    page = f"/ui/workflows/{flow_id}"
    await c.login(Scope.READ)
    read = await c.http.get(page)
    assert read.status_code == 200 and 'data-action="Cancel workflow"' not in read.text
    assert (await c.post(f"{page}/cancel", page)).status_code == 403
    await c.login(Scope.ADMIN)
    forged = await c.http.post(f"{page}/cancel", data={"csrf_token": "x" * 40})
    assert forged.status_code == 403
    cancelled = await c.post(f"{page}/cancel", page)
    assert cancelled.status_code == 303 and cancelled.headers["location"] == page
    view = await WorkflowService(c.parts.service).get(flow_id, None)
    assert {s for _, s in view.nodes.values()} == {TaskStatus.CANCELLED}
    assert 'data-action="Retry workflow"' in (await c.http.get(page)).text
    assert (await c.post(f"{page}/retry", page)).status_code == 303
    assert str((await WorkflowService(c.parts.service).get(flow_id, None)).state) == "RUNNING"
    again = await c.post(f"{page}/retry", page)
    assert again.status_code == 409 and "RUNNING" in again.text


async def test_another_tenants_workflow_is_not_found(console: Console) -> None:
    c = console
    flow_id = await diamond(c)
    await c.login(Scope.ADMIN, tenant="bravo")
    assert (await c.http.get(f"/ui/workflows/{flow_id}")).status_code == 404
    assert flow_id not in (await c.http.get("/ui/workflows")).text
    assert (await c.post(f"/ui/workflows/{flow_id}/cancel", "/ui/workflows")).status_code == 404
