"""``conveyor config``: the effective settings and where each came from (``show``), and the
settings reference generated from the model (``reference``)."""

from __future__ import annotations

from typing import Any

import typer

from conveyor.banner import mask
from conveyor.cli import reference
from conveyor.cli.common import (
    OPERATIONS,
    AppOpt,
    CapacityOpt,
    ConfigOpt,
    CoordinationOpt,
    DbOpt,
    HostOpt,
    JsonOpt,
    PortOpt,
    RedisOpt,
    fail,
    out,
    settings_from,
    show,
)
from conveyor.cli.tables import new_table
from conveyor.config import layers
from conveyor.errors import ConveyorError

config_cli = typer.Typer(help="Show the effective settings, or print the settings reference.")


def register(cli: typer.Typer) -> None:
    cli.add_typer(config_cli, name="config", rich_help_panel=OPERATIONS)


def _lookup(data: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def sources(config: str | None, flags: dict[str, Any]) -> dict[str, str]:
    """The layer each setting's value came from: the highest layer that sets it."""
    found = {e.path: "default" for e in reference.entries()}
    for name, layer in layers(config, **flags):
        for path in found:
            if _lookup(layer, path)[0]:
                found[path] = name
    return found


def safe(path: str, value: Any) -> str:
    if value is None:
        return "none"
    if path in reference.SECRET:
        return "***"
    if path in reference.URLS:
        return mask(str(value))
    return reference.shown(value)


@config_cli.command("show")
def config_show(
    config: ConfigOpt = None, db: DbOpt = None, redis_url: RedisOpt = None,
    coordination_url: CoordinationOpt = None, host: HostOpt = None, port: PortOpt = None,
    app: AppOpt = None, capacity: CapacityOpt = None, as_json: JsonOpt = False,
) -> None:
    """The effective settings, each with its source (default, file, environment, flag);
    passwords in URLs and secrets masked.

    Example: CONVEYOR_WORKER__CAPACITY=50 conveyor config show --port 9000
    """
    flags: dict[str, Any] = {"database_url": db, "redis_url": redis_url,
                             "coordination_url": coordination_url, "host": host, "port": port,
                             "app": app}
    settings = settings_from(config, capacity, **flags)
    if capacity is not None:
        flags["worker"] = {"capacity": capacity}
    try:
        origin = sources(config, flags)
    except ConveyorError as exc:
        fail(str(exc), 2)
    values = settings.model_dump()
    rows = [(path, safe(path, _lookup(values, path)[1]), origin[path]) for path in origin]
    if as_json:
        show({path: {"value": value, "source": source} for path, value, source in rows}, True)
        return
    table = new_table("setting", "value", "source")
    for path, value, source in rows:
        table.add_row(path, value, source if source == "default" else f"[bold]{source}[/bold]")
    out.print(table)


@config_cli.command("reference")
def config_reference() -> None:
    """Print the settings reference (docs/settings.md) as Markdown."""
    out.print(reference.render(), end="", markup=False, highlight=False, soft_wrap=True)
