"""Commands on tasks through the API: submit, get, list, cancel, retry, logs."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli import tables
from conveyor.cli.common import (
    TASKS,
    URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    as_data,
    call,
    cli,
    client_for,
    fail,
    out,
    show,
)
from conveyor.cli.waiting import wait_showing

if TYPE_CHECKING:
    from conveyor.client import TaskInfo

TaskId = Annotated[str, typer.Argument(help="The task's id (submit prints it).")]


def payload_of(text: str, what: str = "--payload") -> dict[str, Any]:
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"{what} is not valid JSON: {exc}", 2)
    if not isinstance(body, dict):
        fail(f"{what} must be a JSON object", 2)
    return body


@cli.command(rich_help_panel=TASKS, epilog="Examples: conveyor submit echo -p '{\"x\": 1}' "
             "--wait · conveyor submit sleep -p '{\"seconds\": 5}' --priority high --delay 10")
def submit(
    task_type: Annotated[str, typer.Argument(help="Task type, e.g. echo.")],
    payload: Annotated[str, typer.Option("--payload", "-p", help="JSON object.")] = "{}",
    priority: Annotated[str | None, typer.Option(
        help="high, normal, low or 2, 1, 0. \\[default: the type's]", show_default=False)] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before it may run.")] = None,
    timeout: Annotated[float | None, typer.Option(
        help="Seconds one attempt may take. \\[default: the type's]", show_default=False)] = None,
    max_retries: Annotated[int | None, typer.Option(
        help="Retries after a failure. \\[default: the type's]", show_default=False)] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same task.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the final state.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 60.0,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create a task and print it; with --wait, its final state (exit 1 unless SUCCESS)."""
    body = payload_of(payload)
    with client_for(url, api_key) as client:
        handle = call(lambda: client.submit(
            task_type, body, priority=priority, delay_seconds=delay, timeout_seconds=timeout,
            max_retries=max_retries, idempotency_key=idempotency_key,
        ), url)
        info = wait_showing(client, handle.info, wait_timeout, url) if wait else handle.info
    show(info, as_json)
    if wait and info.status != "SUCCESS":
        raise typer.Exit(1)


@cli.command(rich_help_panel=TASKS)
def get(task_id: TaskId, url: UrlOpt = URL, api_key: KeyOpt = None,
        as_json: JsonOpt = False) -> None:
    """Show one task."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.get(task_id), url), as_json)


@cli.command("list", rich_help_panel=TASKS, epilog="Example: conveyor list --status FAILED")
def list_(
    status: Annotated[str | None, typer.Option(help="PENDING, PROCESSING, SUCCESS, ...")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Task type.")] = None,
    limit: Annotated[int, typer.Option(help="Most rows to show.", min=1)] = 50,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """List tasks, newest first."""
    with client_for(url, api_key) as client:
        def rows() -> list[TaskInfo]:
            found = []
            for info in client.list(status and status.upper(), task_type, min(limit, 1000)):
                found.append(info)
                if len(found) >= limit:
                    break
            return found

        found = call(rows, url)
    if as_json:
        show([as_data(t) for t in found], True)
        return
    table = tables.new_table("task_id", "type", "status", "priority", "attempt", "created")
    for t in found:
        table.add_row(t.task_id, t.task_type, tables.state(t.status), t.priority,
                      str(t.attempt), tables.ago(t.created_at))
    out.print(table)


@cli.command(rich_help_panel=TASKS)
def cancel(task_id: TaskId, url: UrlOpt = URL, api_key: KeyOpt = None,
           as_json: JsonOpt = False) -> None:
    """Cancel a pending task, or signal a running one to stop."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.cancel(task_id), url), as_json)


@cli.command(rich_help_panel=TASKS)
def retry(task_id: TaskId, url: UrlOpt = URL, api_key: KeyOpt = None,
          as_json: JsonOpt = False) -> None:
    """Run a FAILED, TIMEOUT or CANCELLED task again."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.retry(task_id), url), as_json)


@cli.command(rich_help_panel=TASKS)
def logs(task_id: TaskId, url: UrlOpt = URL, api_key: KeyOpt = None,
         as_json: JsonOpt = False) -> None:
    """Show the state moves of one task, with attempt, worker and reason."""
    with client_for(url, api_key) as client:
        rows = call(lambda: client.logs(task_id), url)
    if as_json:
        show(rows, True)
        return
    table = tables.new_table("at", "attempt", "from", "to", "worker", "message")
    table.columns[-1].no_wrap = False
    for row in rows:
        table.add_row(row["at"], str(row["attempt"]), row["from_status"] or "",
                      tables.state(row["to_status"]), row["worker_id"] or "", row["message"])
    out.print(table)
