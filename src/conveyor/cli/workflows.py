"""``conveyor workflows``: DAGs of tasks through the API: submit, list, show, cancel, retry."""

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

workflows_cli = typer.Typer(help="Workflows: tasks that run after others, created together.")

IdArg = Annotated[str, typer.Argument(help="The workflow's id.")]


def register(cli: typer.Typer) -> None:
    cli.add_typer(workflows_cli, name="workflows", rich_help_panel=OPERATIONS)


@workflows_cli.command("submit", epilog="""Example: conveyor workflows submit '{"name": "etl",
"tasks": {"fetch": {"task_type": "echo"}, "load": {"task_type": "echo", "after": ["fetch"]}}}'""")
def workflows_submit(
    body: Annotated[str | None, typer.Argument(help="The workflow as JSON.")] = None,
    file: Annotated[str | None, typer.Option(
        "--file", "-f", help="Read the workflow from a JSON or YAML file (- for stdin).")] = None,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create every node of a workflow at once ({"name", "tasks": {node: {..., "after"}}})."""
    flow = read_body(body, file)
    with client_for(url, api_key) as client:
        made = call(lambda: client.workflows.submit(flow.get("name", ""),
                                                    flow.get("tasks", {})), url)
    if as_json:
        show(made, True)
        return
    err.print(f"created workflow {made['workflow_id']}", highlight=False)
    _nodes({n: {"task_id": t, "status": ""} for n, t in made["nodes"].items()})


@workflows_cli.command("list")
def workflows_list(
    name: Annotated[str | None, typer.Option(help="Only workflows of this name.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Workflows, newest first."""
    with client_for(url, api_key) as client:
        found = call(lambda: client.workflows.list(name, limit), url)["workflows"]
    if as_json:
        show(found, True)
        return
    table = tables.new_table("id", "name", "created", "tenant")
    for w in found:
        table.add_row(w["workflow_id"], w["name"], w["created_at"] or "", w["tenant"])
    out.print(table)


def _act(action: str, doc: str) -> None:
    """``conveyor workflows ACTION ID``: the workflow after the call (``show`` is a GET)."""

    def command(workflow_id: IdArg, url: UrlOpt = URL, api_key: KeyOpt = None,
                as_json: JsonOpt = False) -> None:
        with client_for(url, api_key) as client:
            answer = call(lambda: getattr(client.workflows, action)(workflow_id), url)
        if as_json:
            show(answer, True)
            return
        err.print(f"{answer['name']} {answer['workflow_id']}: {answer['state']}",
                  highlight=False)
        _nodes(answer["nodes"])

    command.__doc__ = doc
    workflows_cli.command("show" if action == "get" else action)(command)


def _nodes(nodes: dict[str, Any]) -> None:
    table = tables.new_table("node", "task", "status")
    for node, info in nodes.items():
        table.add_row(node, info["task_id"], tables.state(info["status"] or ""))
    out.print(table)


_act("get", "The workflow's state and each node's task and status.")
_act("cancel", "Cancel waiting and pending nodes now; running ones are signalled.")
_act("retry", "Run the failed nodes again, and the nodes their failure cancelled.")
