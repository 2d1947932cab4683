"""``conveyor audit``: the audit log through the API (an admin key), newest first."""

from __future__ import annotations

import json
from itertools import islice
from typing import Annotated, Any

import typer

from conveyor.cli import tables
from conveyor.cli.common import (
    OPERATIONS,
    URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    call,
    cli,
    client_for,
    out,
    show,
)

TimeOpt = typer.Option(help="ISO 8601 time; without an offset it is UTC.")


@cli.command(rich_help_panel=OPERATIONS, epilog="Examples: conveyor audit --action task.cancel "
             "· conveyor audit --target 01M8... · conveyor audit --since 2026-12-01T00:00")
def audit(
    action: Annotated[str | None, typer.Option(
        help="task.cancel, task.retry, task.priority, config.put, config.delete, "
        "queue.pause, queue.resume, key.create, key.revoke.")] = None,
    target: Annotated[str | None, typer.Option(
        help="A target's id: task id, task type, queue name or key id.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="The acting key's id.")] = None,
    since: Annotated[str | None, TimeOpt] = None,
    until: Annotated[str | None, TimeOpt] = None,
    limit: Annotated[int, typer.Option(help="Most rows to show.", min=1)] = 50,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Who did what to which task, config, queue or key, and when (admin key)."""
    with client_for(url, api_key) as client:
        rows = client.audit(action, target, key, since, until, min(limit, 1000))
        found: list[dict[str, Any]] = call(lambda: list(islice(rows, limit)), url)
    if as_json:
        show(found, True)
        return
    table = tables.new_table("at", "key", "client", "action", "target", "change", "detail")
    for column in table.columns[-2:]:
        column.no_wrap = False
    for r in found:
        table.add_row(tables.ago(r["at"]), r["key_id"] or "-", r["client"] or "", r["action"],
                      r["target_id"], change_text(r["before"], r["after"]), r["detail"] or "")
    out.print(table)


def change_text(before: Any, after: Any) -> str:
    """What an action changed, on one line: ``status: PENDING → CANCELLED``."""
    if isinstance(before, dict) and isinstance(after, dict):
        changed = [f"{k}: {_text(before.get(k))} → {_text(after.get(k))}"
                   for k in sorted(before.keys() | after.keys()) if before.get(k) != after.get(k)]
        return "; ".join(changed) or "unchanged"
    if before is None and after is not None:
        return f"new: {_text(after)}"
    if before is not None and after is None:
        return f"removed: {_text(before)}"
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
