"""Commands on tasks through the API: submit, get, list, cancel, retry, logs."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from conveyor.cli.common import (
    KeyOpt,
    UrlOpt,
    call,
    cli,
    client_for,
    fail,
    out,
    show,
)
from conveyor.client import TaskInfo


@cli.command()
def submit(
    task_type: Annotated[str, typer.Argument(help="Task type, e.g. echo.")],
    payload: Annotated[str, typer.Option("--payload", "-p", help="JSON object.")] = "{}",
    priority: Annotated[str | None, typer.Option(help="high, normal, low or 2, 1, 0.")] = None,
    delay: Annotated[float | None, typer.Option(help="Seconds before it may run.")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds one attempt may take.")] = None,
    max_retries: Annotated[int | None, typer.Option(help="Retries after a failure.")] = None,
    idempotency_key: Annotated[str | None, typer.Option(help="Same key, same task.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the final state.")] = False,
    wait_timeout: Annotated[float, typer.Option(help="Seconds --wait waits.")] = 60.0,
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Create a task; prints it (and with --wait, its final state)."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        fail(f"--payload is not valid JSON: {exc}", 2)
    if not isinstance(body, dict):
        fail("--payload must be a JSON object", 2)
    with client_for(url, api_key) as client:
        handle = call(lambda: client.submit(
            task_type, body, priority=priority, delay_seconds=delay, timeout_seconds=timeout,
            max_retries=max_retries, idempotency_key=idempotency_key,
        ))
        info = call(lambda: client.wait(handle.id, wait_timeout)) if wait else handle.info
    show(info)
    if wait and info.status != "SUCCESS":
        raise typer.Exit(1)


@cli.command()
def get(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Show one task."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.get(task_id)))


@cli.command("list")
def list_(
    status: Annotated[str | None, typer.Option(help="PENDING, PROCESSING, SUCCESS, ...")] = None,
    task_type: Annotated[str | None, typer.Option("--type", help="Task type.")] = None,
    limit: Annotated[int, typer.Option(help="Most rows to show.", min=1)] = 50,
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """List tasks, newest first."""
    table = Table("task_id", "type", "status", "priority", "attempt", "created_at")
    table.columns[0].no_wrap = True
    with client_for(url, api_key) as client:
        def rows() -> list[TaskInfo]:
            found = []
            for info in client.list(status and status.upper(), task_type, min(limit, 1000)):
                found.append(info)
                if len(found) >= limit:
                    break
            return found

        for t in call(rows):
            table.add_row(t.task_id, t.task_type, t.status, t.priority, str(t.attempt),
                          t.created_at or "")
    out.print(table)


@cli.command()
def cancel(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Cancel a pending task, or signal a running one to stop."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.cancel(task_id)))


@cli.command()
def retry(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Run a FAILED, TIMEOUT or CANCELLED task again."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.retry(task_id)))


@cli.command()
def logs(task_id: str, url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Show the state moves of one task."""
    table = Table("at", "attempt", "from", "to", "worker", "message")
    with client_for(url, api_key) as client:
        for row in call(lambda: client.logs(task_id)):
            table.add_row(row["at"], str(row["attempt"]), row["from_status"] or "",
                          row["to_status"], row["worker_id"] or "", row["message"])
    out.print(table)
