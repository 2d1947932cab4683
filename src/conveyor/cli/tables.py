"""Tables for people: operations answers as rich tables with coloured states and relative
ages ("3s ago"); ``--json`` prints the API's own answer instead."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from rich.table import Table

from conveyor.tenants import DEFAULT_TENANT

STATE_STYLE = {
    "WAITING": "blue", "PENDING": "yellow", "PROCESSING": "cyan", "SUCCESS": "green",
    "FAILED": "red", "TIMEOUT": "magenta", "CANCELLED": "dim",
}
PRIORITIES = ("high", "normal", "low")


def state(status: str) -> str:
    style = STATE_STYLE.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def ago(stamp: str | float | None, now: float | None = None) -> str:
    """An ISO timestamp or epoch seconds as an age: ``850ms ago``, ``12s ago``, ``3m ago``."""
    if stamp is None or stamp == "":
        return ""
    at = datetime.fromisoformat(stamp).timestamp() if isinstance(stamp, str) else stamp
    age = max(0.0, (time.time() if now is None else now) - at)
    if age < 1:
        return f"{age * 1000:.0f}ms ago"
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.0f}{unit} ago"
    return f"{age:.0f}s ago"


def new_table(*columns: str) -> Table:
    table = Table(*columns)
    for column in table.columns:
        column.no_wrap = True
        column.overflow = "fold"
    return table


def workers(rows: list[dict[str, Any]]) -> Table:
    table = new_table("worker", "host", "pid", "load", "state", "types", "heartbeat", "started")
    for w in rows:
        status = "[yellow]draining[/yellow]" if w.get("draining") else "[green]live[/green]"
        table.add_row(w["worker_id"], w["host"], str(w["pid"]),
                      f"{w['load']}/{w['capacity']}", status, ",".join(w["types"]) or "*",
                      ago(w.get("last_heartbeat")), ago(w.get("started_at")))
    return table


def queues(data: dict[str, Any]) -> Table:
    paused = set(data.get("paused", []))
    lengths = data.get("lengths", {})
    table = new_table("queue", "tasks", "state")
    tenants: dict[str, dict[str, int]] = data.get("tenants", {})
    several = any(set(by_tenant) - {DEFAULT_TENANT} for by_tenant in tenants.values())
    for name in (*PRIORITIES, "delayed"):
        table.add_row(name, str(lengths.get(name, 0)),
                      "[red]paused[/red]" if name in paused else "")
        for tenant, n in sorted(tenants.get(name, {}).items()) if several else ():
            table.add_row(f"  tenant {tenant}", str(n), "")
    for name in sorted(paused - set(PRIORITIES)):
        table.add_row(f"type {name}", "", "[red]paused[/red]")
    for name, n in sorted(data.get("no_worker", {}).items()):
        table.add_row(f"type {name}", str(n), f"[red]no live worker runs type {name}[/red]")
    return table


def stats(data: dict[str, Any]) -> Table:
    by_type: dict[str, dict[str, int]] = data.get("by_type", {})
    statuses = [s for s in STATE_STYLE if any(s in counts for counts in by_type.values())]
    table = new_table("type", *(state(s) for s in statuses))
    for task_type, counts in sorted(by_type.items()):
        table.add_row(task_type, *(str(counts.get(s, "")) for s in statuses))
    totals = data.get("by_status", {})
    table.add_row("[bold]all[/bold]", *(f"[bold]{totals.get(s, 0)}[/bold]" for s in statuses))
    window = data.get("window_seconds", 0)
    rates = ", ".join(f"{s} {r:.2f}/s" for s, r in data.get("finished_per_second", {}).items())
    table.caption = (f"last {window:g}s: created {data.get('created_per_second', 0):.2f}/s"
                     + (f"; finished {rates}" if rates else ""))
    return table


def scheduler(data: dict[str, Any]) -> Table:
    duties: dict[str, str] = data.get("duties") or {}
    leader = data.get("leader")
    table = new_table("scheduler", "value")
    table.add_row("leader", f"[green]{leader}[/green]" if leader else "[red]none elected[/red]")
    table.add_row("epoch", str(data.get("epoch") if data.get("epoch") is not None else ""))
    table.add_row("lease renewed", ago(duties.get("elector")))
    standby: dict[str, str] = data.get("standby") or {}
    table.add_row("standby", ", ".join(f"{h} ({ago(at)})" for h, at in standby.items())
                  or "none")
    for name, last in sorted(duties.items()):
        if name != "elector":
            table.add_row(f"{name} ran", ago(last))
    lengths = (data.get("queues") or {}).get("lengths", {})
    table.add_row("queued", ", ".join(f"{k} {v}" for k, v in lengths.items()))
    paused = (data.get("queues") or {}).get("paused", [])
    table.add_row("paused", ", ".join(paused) or "nothing")
    return table
