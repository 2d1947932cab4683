"""``GET /api/v1/audit``: the audit log, for admins, filtered and paged like the task list.

A key sees its own tenant's rows only: the tenant goes into the SQL filter
(``store.audit.list_entries(query, tenant)``); a scope spanning tenants would pass None.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from conveyor.api.auth import Admin
from conveyor.api.schemas import iso, utc_seconds
from conveyor.api.task_routes import ERRORS, UTC_NOTE
from conveyor.audit import AuditQuery, AuditRecord, parse_cursor
from conveyor.service import TaskService

router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: str | None
    tenant: str
    key_id: str | None = Field(description="None: authentication off, or the CLI")
    client: str | None = Field(description="the caller's address; \"cli\" for the CLI")
    action: str = Field(examples=["task.cancel"])
    target_kind: str = Field(examples=["task"])
    target_id: str
    before: Any = None
    after: Any = None
    detail: str | None = None

    @classmethod
    def of(cls, r: AuditRecord) -> AuditOut:
        e = r.entry
        return cls(
            id=r.id, at=iso(r.at), tenant=e.actor.tenant, key_id=e.actor.key_id,
            client=e.actor.client, action=e.action, target_kind=e.target_kind,
            target_id=e.target_id, before=e.before, after=e.after, detail=e.detail,
        )


class AuditList(BaseModel):
    """Newest first; pass ``next_cursor`` back as ``cursor`` for the next page."""

    entries: list[AuditOut]
    next_cursor: str | None = None


@router.get("/audit", response_model=AuditList)
async def audit(
    request: Request,
    who: Admin,
    action: Annotated[str | None, Query(max_length=64, description="e.g. task.cancel")] = None,
    target: Annotated[str | None, Query(max_length=255, description="a target's id")] = None,
    key_id: Annotated[str | None, Query(max_length=32)] = None,
    since: Annotated[datetime | None, Query(description=UTC_NOTE)] = None,
    until: Annotated[datetime | None, Query(description=UTC_NOTE)] = None,
    cursor: Annotated[str | None, Query(max_length=32)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> AuditList:
    """Operator actions (cancel, retry, priority, task configs, pause / resume, keys) of the
    caller's tenant, newest first."""
    query = AuditQuery(
        action=action, target_id=target, key_id=key_id, since=utc_seconds(since, "since"),
        until=utc_seconds(until, "until"), cursor=parse_cursor(cursor), limit=limit,
    )
    svc: TaskService = request.app.state.service
    page = await svc.store.audit.list_entries(query, who.tenant)
    return AuditList(
        entries=[AuditOut.of(r) for r in page.records],
        next_cursor=None if page.next_cursor is None else str(page.next_cursor),
    )
