"""Bulk cancel / retry: of the tasks checked in a list, or of every task matching a filter
(after a page that shows how many match and asks to confirm).

Matching tasks are found by paging the same list the search uses (newest first, by cursor),
never by a ``COUNT(*)``, and at most ``MAX_BULK`` of them a request: a larger set is done in
several confirmations, each saying how many it reached. Each task then goes through
``TaskService`` as a single click would (ownership, tenancy, one audit row per task); a task
that moved meanwhile or is not the key's to change is counted as skipped, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from conveyor.api.auth import acting
from conveyor.console import session
from conveyor.console.routing import ConsoleRoute
from conveyor.console.tasks import Key, Meta, task_filter
from conveyor.console.views import Viewer, Viewing
from conveyor.errors import Conflict, Forbidden, NotFound, ValidationError
from conveyor.models import Task, TaskStatus
from conveyor.store.protocol import ListRequest, TaskFilter

router = APIRouter(route_class=ConsoleRoute)
MAX_BULK = 10_000
FILTERS = ("status", "type", "created_from", "created_to", "key", "meta", "tenant")
TAKES: dict[str, frozenset[TaskStatus]] = {  # which states each verb applies to
    "cancel": frozenset({TaskStatus.PENDING, TaskStatus.PROCESSING}),
    "retry": frozenset({TaskStatus.FAILED, TaskStatus.TIMEOUT, TaskStatus.CANCELLED}),
}
Text = Annotated[str, Query(max_length=128)]


@dataclass(frozen=True, slots=True)
class Matched:
    tasks: list[Task]  # those the verb applies to
    seen: int  # every matching task read
    cursor: str | None  # MAX_BULK reached: where the next batch starts (None: no more)

    @property
    def capped(self) -> bool:
        return self.cursor is not None


def check_verb(verb: str) -> frozenset[TaskStatus]:
    if verb not in TAKES:
        raise ValidationError(f"action: choose cancel or retry (got {verb!r})")
    return TAKES[verb]


async def matching(
    who: Viewer, where: TaskFilter, verb: str, cursor: str | None = None
) -> Matched:
    """Up to ``MAX_BULK`` matching tasks after ``cursor`` (newest first); the ``cursor`` of the
    answer is the last task read when more may follow (ids are the list's cursors)."""
    takes = check_verb(verb)
    found: list[Task] = []
    seen = 0
    while True:
        page = await who.service.list_tasks(ListRequest(where, cursor, 1000))
        rows = page.tasks[: MAX_BULK - seen]
        seen += len(rows)
        found.extend(t for t in rows if t.status in takes)
        if len(rows) < len(page.tasks):  # cut at MAX_BULK
            return Matched(found, seen, rows[-1].id)
        if page.next_cursor is None:
            return Matched(found, seen, None)
        # a metadata search's page may be empty and still go on past its window
        cursor = page.next_cursor
        if seen >= MAX_BULK:
            return Matched(found, seen, cursor)


async def apply(who: Viewer, verb: str, task_ids: Iterable[str]) -> tuple[int, int]:
    """(done, skipped)."""
    actor = acting(who.principal, who.request)
    done = skipped = 0
    for task_id in task_ids:
        try:
            if verb == "cancel":
                await who.service.cancel(task_id, who.principal, actor=actor)
            else:
                await who.service.retry(task_id, who.principal, actor=actor)
            done += 1
        except (Conflict, Forbidden, NotFound):
            skipped += 1
    return done, skipped


def _filter(who: Viewer, fields: dict[str, str]) -> TaskFilter:
    return task_filter(who, *(fields.get(name, "") for name in FILTERS))


@router.get("/tasks/bulk", response_class=HTMLResponse)
async def confirm(
    who: Viewing, verb: Text = "", status: Text = "", type: Text = "",
    created_from: Text = "", created_to: Text = "", cursor: Text = "", key: Key = "",
    meta: Meta = "", tenant: Text = "",
) -> Response:
    """How many tasks the filter matches and how many the action would change; a button to
    go ahead."""
    who.need(who.can_act, f"{verb} tasks")
    query = {"status": status, "type": type, "created_from": created_from,
             "created_to": created_to, "key": key, "meta": meta, "tenant": tenant}
    found = await matching(who, _filter(who, query), verb, cursor or None)
    return who.render("bulk.html", verb=verb, query=query, found=found, limit=MAX_BULK,
                      start=cursor)


@router.post("/tasks/bulk", response_class=HTMLResponse)
async def bulk(who: Viewing) -> Response:
    fields = await session.checked_form(who.request)
    verb = fields.get("verb", "")
    who.need(who.can_act, f"{verb} tasks")
    found = await matching(who, _filter(who, fields), verb, fields.get("cursor") or None)
    done, skipped = await apply(who, verb, [t.id for t in found.tasks])
    return who.render("bulk_done.html", verb=verb, done=done, skipped=skipped,
                      cursor=found.cursor, query={k: fields.get(k, "") for k in FILTERS})


@router.post("/tasks/selected", response_class=HTMLResponse)
async def selected(who: Viewing) -> Response:
    fields = await session.checked_form(who.request)
    verb = fields.get("verb", "")
    check_verb(verb)
    who.need(who.can_act, f"{verb} tasks")
    ids = fields.every("id")[:1000]
    done, skipped = await apply(who, verb, ids)
    return who.render("bulk_done.html", verb=verb, done=done, skipped=skipped, cursor=None,
                      query={})
