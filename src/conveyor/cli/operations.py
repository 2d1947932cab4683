"""Commands for operators of a running fleet: scheduler status, workers, queues, stats,
pause, resume."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from conveyor.cli.common import (
    KeyOpt,
    UrlOpt,
    call,
    cli,
    client_for,
    out,
    show,
)
from conveyor.cli.run import scheduler_cli


@scheduler_cli.command("status")
def scheduler_status(url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Leader id, fencing epoch, queue lengths, delayed count, paused queues."""
    with client_for(url, api_key) as client:
        show(call(client.scheduler_status))


@cli.command()
def workers(url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Live workers with their load and capacity."""
    table = Table("worker_id", "host", "pid", "load", "capacity", "types", "last_heartbeat")
    with client_for(url, api_key) as client:
        for w in call(client.workers):
            table.add_row(w["worker_id"], w["host"], str(w["pid"]), str(w["load"]),
                          str(w["capacity"]), ",".join(w["types"]) or "*",
                          w["last_heartbeat"] or "")
    out.print(table)


@cli.command()
def queues(url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None) -> None:
    """Queue lengths per priority, the delayed count, and what is paused."""
    with client_for(url, api_key) as client:
        show(call(client.queues))


@cli.command()
def stats(
    window: Annotated[float, typer.Option(help="Seconds the rates cover.")] = 300,
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Tasks by state and by type, and creation / completion rates."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.stats(window)))


@cli.command()
def pause(
    name: Annotated[str, typer.Argument(help="high, normal, low, or a task type.")],
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Stop dispatching a priority queue or a task type (queued tasks wait)."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.pause(name)))


@cli.command()
def resume(
    name: Annotated[str, typer.Argument(help="high, normal, low, or a task type.")],
    url: UrlOpt = "http://127.0.0.1:8080", api_key: KeyOpt = None,
) -> None:
    """Resume dispatching a paused priority queue or task type."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.resume(name)))
