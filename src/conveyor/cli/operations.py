"""Commands for operators of a running fleet: scheduler status, workers, queues, stats,
pause, resume."""

from __future__ import annotations

from typing import Annotated

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
from conveyor.cli.run import scheduler_cli


@scheduler_cli.command("status")
def scheduler_status(url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Leader, fencing epoch, lease age, standby schedulers, each duty's last run, queue
    lengths, paused queues."""
    with client_for(url, api_key) as client:
        data = call(client.scheduler_status, url)
    show(data, True) if as_json else out.print(tables.scheduler(data))


@cli.command(rich_help_panel=OPERATIONS)
def workers(url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Live workers: load/capacity, types, heartbeat age."""
    with client_for(url, api_key) as client:
        rows = call(client.workers, url)
    show(rows, True) if as_json else out.print(tables.workers(rows))


@cli.command(rich_help_panel=OPERATIONS)
def queues(url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Queue lengths per priority, the delayed count, what is paused, and the pending types
    no live worker runs."""
    with client_for(url, api_key) as client:
        data = call(client.queues, url)
    show(data, True) if as_json else out.print(tables.queues(data))


@cli.command(rich_help_panel=OPERATIONS)
def stats(
    window: Annotated[float, typer.Option(help="Seconds the rates cover.", show_default=True)]
    = 300,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Tasks by type and state, and creation / completion rates."""
    with client_for(url, api_key) as client:
        data = call(lambda: client.stats(window), url)
    show(data, True) if as_json else out.print(tables.stats(data))


@cli.command(rich_help_panel=OPERATIONS)
def pause(
    name: Annotated[str, typer.Argument(help="high, normal, low, or a task type.")],
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Stop dispatching a priority queue or a task type (queued tasks wait).

    Example: conveyor pause low
    """
    with client_for(url, api_key) as client:
        show(call(lambda: client.pause(name), url), as_json)


@cli.command(rich_help_panel=OPERATIONS)
def resume(
    name: Annotated[str, typer.Argument(help="high, normal, low, or a task type.")],
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Resume dispatching a paused priority queue or task type.

    Example: conveyor resume low
    """
    with client_for(url, api_key) as client:
        show(call(lambda: client.resume(name), url), as_json)
