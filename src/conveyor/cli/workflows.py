"""``conveyor workflows``: DAGs of tasks through the API: submit, list, show, cancel, retry;
and ``conveyor show ID``: a task, or a workflow's nodes as an indented tree."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from conveyor.cli import tables
from conveyor.cli.common import (
    OPERATIONS,
    TASKS,
    URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    call,
    cli,
    client_for,
    err,
    fail,
    out,
    show,
)
from conveyor.cli.hints import explain
from conveyor.cli.tasks import payload_of
from conveyor.cli.types import read_body

if TYPE_CHECKING:
    from conveyor.client import Client

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
    _created(made, as_json)


ThenOpt = Annotated[str | None, typer.Option(
    help="A task create body (JSON) to run after every copy, with their results.")]
PayloadOpt = Annotated[str, typer.Option("--payload", "-p", help="JSON object.")]


@workflows_cli.command("shard", epilog="""Example: conveyor workflows shard echo --shards 4
-p '{"job": "reindex"}' --then '{"task_type": "echo"}'""")
def workflows_shard(
    task_type: Annotated[str, typer.Argument(help="Task type of every shard.")],
    shards: Annotated[int, typer.Option(help="How many shard tasks (1..10000).")],
    payload: PayloadOpt = "{}", then: ThenOpt = None,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Create SHARDS tasks as one workflow, each with shard_index and shard_total in its
    payload, and optionally a fan-in task after them."""
    _fan(lambda c, body, after: c.workflows.shard(task_type, body, shards, after),
         payload, then, url, api_key, as_json)


@workflows_cli.command("broadcast", epilog="""Example: conveyor workflows broadcast
reload-cache -p '{"key": "users"}'""")
def workflows_broadcast(
    task_type: Annotated[str, typer.Argument(help="Task type of every copy.")],
    payload: PayloadOpt = "{}", then: ThenOpt = None,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Run one copy of a task on every live worker of its type, as one workflow, and
    optionally a fan-in task after them."""
    _fan(lambda c, body, after: c.workflows.broadcast(task_type, body, after),
         payload, then, url, api_key, as_json)


def _fan(
    create: Callable[[Client, dict[str, Any], dict[str, Any] | None], Any], payload: str,
    then: str | None, url: str, api_key: str | None, as_json: bool,
) -> None:
    body = payload_of(payload)
    after = None if then is None else payload_of(then, "--then")
    with client_for(url, api_key) as client:
        made = call(lambda: create(client, body, after), url)
    _created(made, as_json)


def _created(made: dict[str, Any], as_json: bool) -> None:
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
        _tree(answer)

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


@cli.command("show", rich_help_panel=TASKS)
def show_any(
    some_id: Annotated[str, typer.Argument(help="A task's or a workflow's id.")],
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Show a task, or a workflow as a tree of its nodes (children under their parents)
    with their states."""
    from conveyor.client import ApiError

    with client_for(url, api_key) as client:
        try:
            task = client.get(some_id)
        except ApiError as exc:
            if exc.status != 404:
                fail(explain(exc, url))
            try:
                flow = client.workflows.get(some_id)
            except ApiError as again:
                fail(f"no task or workflow with id {some_id!r}" if again.status == 404
                     else explain(again, url))
        else:
            show(task, as_json)
            return
    if as_json:
        show(flow, True)
        return
    _tree(flow)


def tree_rows(nodes: dict[str, Any]) -> list[tuple[int, str, list[str]]]:
    """(depth, node, its other parents) in print order: each node once, under its first
    parent, children by name; a node on a cycle (none is stored) or without a known parent
    shows as a root."""
    children: dict[str, list[str]] = {n: [] for n in nodes}
    roots: list[str] = []
    for name in sorted(nodes):
        parents = [p for p in nodes[name].get("after", []) if p in nodes]
        (children[parents[0]] if parents else roots).append(name)
    rows: list[tuple[int, str, list[str]]] = []
    seen: set[str] = set()
    stack = [(0, n) for n in reversed(roots)]
    while stack:
        depth, name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        rows.append((depth, name, nodes[name].get("after", [])[1:]))
        stack.extend((depth + 1, c) for c in reversed(children[name]))
    rows.extend((0, n, []) for n in sorted(nodes) if n not in seen)
    return rows


def _tree(flow: dict[str, Any]) -> None:
    err.print(f"{flow['name']} {flow['workflow_id']}: {flow['state']}", highlight=False)
    table = tables.new_table("node", "task", "status")
    for depth, name, others in tree_rows(flow["nodes"]):
        info = flow["nodes"][name]
        also = f"  (also after {', '.join(others)})" if others else ""
        table.add_row("  " * depth + name + also, info["task_id"],
                      tables.state(info["status"] or "gone"))
    out.print(table)
