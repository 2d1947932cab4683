"""``conveyor schedules``: recurring tasks through the API: list, show, put, pause, resume,
trigger, backfill, fires, rm."""

from __future__ import annotations

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
    client_for,
    err,
    out,
    show,
)
from conveyor.cli.types import read_body

schedules_cli = typer.Typer(help="Schedules: tasks created by cron or interval, once per fire.")

NameArg = Annotated[str, typer.Argument(help="The schedule's name, e.g. nightly-report.")]


def register(cli: typer.Typer) -> None:
    cli.add_typer(schedules_cli, name="schedules", rich_help_panel=OPERATIONS)


@schedules_cli.command("list")
def schedules_list(url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Every schedule with its next fire time."""
    with client_for(url, api_key) as client:
        found = call(client.schedules.list, url)["schedules"]
    if as_json:
        show(found, True)
        return
    table = tables.new_table("name", "type", "when", "zone", "overlap", "next fire", "last fire",
                             "missed", "source")
    for s in found:
        when = s["cron"] or f"every {s['every_seconds']}s"
        upcoming = "[yellow]paused[/yellow]" if s["paused"] else s["next_fire_at"] or "ended"
        table.add_row(s["name"], s["task_type"], when, s["timezone"], s["overlap"], upcoming,
                      s["last_fire_at"] or "", str(s["missed"]), s["source"])
    out.print(table)


@schedules_cli.command("show")
def schedules_show(name: NameArg, url: UrlOpt = URL, api_key: KeyOpt = None,
                   as_json: JsonOpt = False) -> None:
    """One schedule and its latest fires."""
    with client_for(url, api_key) as client:
        found = call(lambda: client.schedules.get(name), url)
        fires = call(lambda: client.schedules.fires(name, 10), url)["fires"]
    if as_json:
        show({**found, "fires": fires}, True)
        return
    show(found)
    table = tables.new_table("fire time", "kind", "outcome", "task", "late", "note")
    for f in fires:
        table.add_row(f["fire_at"], f["kind"], f["outcome"], f["task_id"] or "",
                      f"{f['late_seconds']:.2f}s", f["note"] or "")
    out.print(table)


@schedules_cli.command("put", epilog="""Example: conveyor schedules put nightly '{"task_type":
"report", "cron": "0 9 * * MON-FRI", "timezone": "Asia/Shanghai"}'""")
def schedules_put(
    name: NameArg,
    body: Annotated[str | None, typer.Argument(help="The schedule as JSON.")] = None,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", help="Read the schedule from a JSON or YAML file (- for stdin).")] = None,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create or replace a schedule (admin key)."""
    schedule = read_body(body, file)
    with client_for(url, api_key) as client:
        _done(call(lambda: client.schedules.put(name, schedule), url), "stored", as_json)


def _done(answer: Any, what: str, as_json: bool) -> None:
    if as_json:
        show(answer, True)
    else:
        err.print(f"{what} {answer.get('name', '')}".rstrip(), highlight=False)
        show(answer)


def _act(action: str, what: str, doc: str) -> None:
    """``conveyor schedules ACTION NAME``: one POST on the schedule, its answer shown."""

    def command(name: NameArg, url: UrlOpt = URL, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
        with client_for(url, api_key) as client:
            answer = call(lambda: getattr(client.schedules, action)(name), url)
        _done(answer, what, as_json)

    command.__doc__ = doc
    schedules_cli.command(action)(command)


_act("pause", "paused", "Stop firing until resumed.")
_act("resume", "resumed", "Fire again from now on (what fell in the pause is not caught up).")
_act("trigger", "fired", "Fire now, once.")


@schedules_cli.command("backfill")
def schedules_backfill(
    name: NameArg,
    start: Annotated[str, typer.Option("--from", help="ISO 8601 start (UTC without offset).")],
    end: Annotated[str, typer.Option("--to", help="ISO 8601 end, included.")],
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Fire each fire time of the range once (at most 10,000); recorded fires are kept."""
    with client_for(url, api_key) as client:
        answer = call(lambda: client.schedules.backfill(name, start, end), url)
    if as_json:
        show(answer, True)
    else:
        err.print(f"{answer['fires']} fires in the range, {answer['created']} tasks created",
                  highlight=False)


@schedules_cli.command("rm")
def schedules_rm(name: NameArg, url: UrlOpt = URL, api_key: KeyOpt = None,
                 as_json: JsonOpt = False) -> None:
    """Delete a schedule and its fire history (the tasks it created stay)."""
    with client_for(url, api_key) as client:
        call(lambda: client.schedules.delete(name), url)
    if as_json:
        show({"deleted": name}, True)
    else:
        err.print(f"deleted schedule {name}", highlight=False)
