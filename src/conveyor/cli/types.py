"""``conveyor types``: task configs (executor, timeout, retries, limits of a task type) through
the API: put, get, ls, rm."""

from __future__ import annotations

import sys
from pathlib import Path
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
    fail,
    out,
    show,
)

types_cli = typer.Typer(help="Task configs: how a type runs (executor, timeout, retries, limits).")

TypeArg = Annotated[str, typer.Argument(help="The task type, e.g. send_mail.")]


def register(cli: typer.Typer) -> None:
    cli.add_typer(types_cli, name="types", rich_help_panel=OPERATIONS)


def read_body(body: str | None, file: str | None) -> dict[str, Any]:
    """The config from the argument (JSON) or a JSON / YAML file (``-`` for stdin)."""
    if (body is None) == (file is None):
        fail("give the config either as an argument (JSON) or with --file", 2)
    source = "the config"
    if file is not None:
        source = file
        try:
            body = sys.stdin.read() if file == "-" else Path(file).read_text()
        except OSError as exc:
            fail(f"cannot read {file}: {exc}", 2)
    import yaml

    try:
        data = yaml.safe_load(body or "")  # YAML is a superset of JSON
    except yaml.YAMLError as exc:
        fail(f"{source} is neither JSON nor YAML: {exc}", 2)
    if not isinstance(data, dict):
        fail(f"{source} must be an object, e.g. '{{\"executor\": \"http\", ...}}'", 2)
    return data


@types_cli.command("put", epilog="""Example: conveyor types put send_mail '{"executor": "http",
"executor_config": {"url": "http://mail.internal/send"}, "timeout_seconds": 30}'""")
def types_put(
    task_type: TypeArg,
    body: Annotated[str | None, typer.Argument(help="The config as JSON.")] = None,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", help="Read the config from a JSON or YAML file (- for stdin).")] = None,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create or replace the config of a task type (admin key)."""
    config = read_body(body, file)
    with client_for(url, api_key) as client:
        stored = call(lambda: client.put_config(task_type, config), url)
    if as_json:
        show(stored, True)
    else:
        err.print(f"stored the config of {task_type}", highlight=False)
        show(stored)


@types_cli.command("get")
def types_get(task_type: TypeArg, url: UrlOpt = URL, api_key: KeyOpt = None,
              as_json: JsonOpt = False) -> None:
    """Show the config of one task type."""
    with client_for(url, api_key) as client:
        show(call(lambda: client.get_config(task_type), url), as_json)


@types_cli.command("ls")
def types_ls(url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False) -> None:
    """Every task config."""
    with client_for(url, api_key) as client:
        configs = call(client.configs, url)
    if as_json:
        show(configs, True)
        return
    table = tables.new_table("type", "executor", "timeout", "retries", "priority",
                             "concurrency", "rate/s", "enabled", "updated")
    for c in configs:
        table.add_row(c["task_type"], c["executor"], _opt(c["timeout_seconds"]),
                      _opt(c["max_retries"]), _opt(c["priority"]), _opt(c["concurrency_limit"]),
                      _opt(c["rate_limit"]), "yes" if c["enabled"] else "[red]no[/red]",
                      tables.ago(c["updated_at"]))
    out.print(table)


def _opt(value: Any) -> str:
    return "" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


@types_cli.command("rm")
def types_rm(task_type: TypeArg, url: UrlOpt = URL, api_key: KeyOpt = None,
             as_json: JsonOpt = False) -> None:
    """Delete the config of a task type (its registration or the settings apply again)."""
    with client_for(url, api_key) as client:
        call(lambda: client.delete_config(task_type), url)
    if as_json:
        show({"deleted": task_type}, True)
    else:
        err.print(f"deleted the config of {task_type}", highlight=False)
