"""Tasks: search with filters (state, type, creation time, idempotency key, metadata) and
cursor paging, a task's page with its timeline, and the
cancel / retry / priority actions, each through ``TaskService`` with the caller's principal
(so ownership, tenancy and the audit row are exactly the API's)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from conveyor.api.auth import acting
from conveyor.console import session
from conveyor.console.routing import ConsoleRoute, back
from conveyor.console.timeline import FINAL, timeline
from conveyor.console.views import Viewer, Viewing
from conveyor.errors import ValidationError
from conveyor.ids import is_id
from conveyor.models import Priority, TaskStatus, check_task_type
from conveyor.store.protocol import METADATA_WINDOW, ListRequest, TaskFilter
from conveyor.tenants import DEFAULT_TENANT, check_tenant

router = APIRouter(route_class=ConsoleRoute)
PAGE = 50
Text = Annotated[str, Query(max_length=128)]
Key = Annotated[str, Query(max_length=255)]  # an idempotency key's own bound
Meta = Annotated[str, Query(max_length=512)]


def moment(text: str, name: str) -> float | None:
    """A ``datetime-local`` field (UTC unless it names an offset), or None when empty."""
    if not text:
        return None
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(f"{name}: not a date and time: {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def task_filter(
    who: Viewer, status: str, task_type: str, start: str, end: str, key: str = "",
    meta: str = "", tenant: str = "",
) -> TaskFilter:
    """The list's filter from the form's fields. An idempotency key is looked up with its type
    in one tenant (the unique index): the viewer's own, or for a key spanning tenants the one
    the form names (``default`` if none)."""
    if status and status not in {str(s) for s in TaskStatus}:
        raise ValidationError(f"state: unknown state {status!r}")
    if task_type:
        check_task_type(task_type)
    if key and not task_type:
        raise ValidationError("idempotency key: give the task type too (keys are unique per "
                              "type)")
    scope = who.sees
    if key and scope is None:
        scope = check_tenant(tenant or DEFAULT_TENANT)
    return TaskFilter(
        tenant=scope, status=TaskStatus(status) if status else None,
        task_type=task_type or None, created_from=moment(start, "from"),
        created_to=moment(end, "to"), idempotency_key=key or None, metadata=pair(meta),
    )


def pair(text: str) -> tuple[str, str] | None:
    """``key=value`` (spaces around either trimmed), or None when empty."""
    if not text.strip():
        return None
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ValidationError(f"metadata: write key=value (got {text!r})")
    return name.strip(), value.strip()


@router.get("/tasks", response_class=HTMLResponse)
async def tasks(
    who: Viewing, status: Text = "", type: Text = "", created_from: Text = "",
    created_to: Text = "", id: Text = "", cursor: Text = "", key: Key = "", meta: Meta = "",
    tenant: Text = "",
) -> Response:
    if id.strip():
        found = await who.service.get(id.strip(), who.sees)  # 404 page when not this tenant's
        return RedirectResponse(f"{session.PREFIX}/tasks/{found.id}", status_code=303)
    where = task_filter(who, status, type, created_from, created_to, key, meta, tenant)
    page = await who.service.list_tasks(ListRequest(where, cursor or None, PAGE))
    query = {"status": status, "type": type, "created_from": created_from,
             "created_to": created_to, "key": key, "meta": meta, "tenant": tenant}
    return who.render("tasks.html", page=page, query=query, states=[str(s) for s in TaskStatus],
                      final=FINAL, window=METADATA_WINDOW)


async def _task_context(who: Viewer, task_id: str) -> dict[str, Any]:
    task = await who.service.get(task_id, who.sees)
    logs = await who.service.logs(task_id, who.sees)
    return {"task": task, "steps": timeline(logs, time.time()), "final": FINAL,
            "priorities": [p.label for p in Priority]}


@router.get("/tasks/{task_id}", response_class=HTMLResponse)
async def task_page(task_id: str, who: Viewing) -> Response:
    return who.render("task.html", **await _task_context(who, task_id))


@router.get("/tasks/{task_id}/panel", response_class=HTMLResponse)
async def task_panel(task_id: str, who: Viewing) -> Response:
    """The task's details and timeline alone: what the page re-reads each second while the
    task is not finished."""
    return who.render("task_panel.html", **await _task_context(who, task_id))


async def _act(who: Viewer, task_id: str, verb: str) -> Response:
    fields = await session.checked_form(who.request)
    who.need(who.can_act, f"{verb} tasks")
    if not is_id(task_id):
        await who.service.get(task_id, who.sees)  # the API's own 404 text
    svc, actor = who.service, acting(who.principal, who.request)
    if verb == "cancel":
        await svc.cancel(task_id, who.principal, actor=actor)
    elif verb == "retry":
        await svc.retry(task_id, who.principal, actor=actor)
    else:
        label = fields.get("priority", "")
        if label not in {p.label for p in Priority}:
            raise ValidationError(f"priority: choose high, normal or low (got {label!r})")
        await svc.set_priority(task_id, Priority.parse(label), who.principal, actor=actor)
    return RedirectResponse(back(fields, f"{session.PREFIX}/tasks/{task_id}"), status_code=303)


@router.post("/tasks/{task_id}/cancel")
async def cancel(task_id: str, who: Viewing) -> Response:
    return await _act(who, task_id, "cancel")


@router.post("/tasks/{task_id}/retry")
async def retry(task_id: str, who: Viewing) -> Response:
    return await _act(who, task_id, "retry")


@router.post("/tasks/{task_id}/priority")
async def priority(task_id: str, who: Viewing) -> Response:
    return await _act(who, task_id, "change the priority of")
