"""``conveyor batch``: submit every task in a file of JSON lines, in chunks of one request
(and one transaction) each, with a progress bar."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from conveyor.cli.common import (
    TASKS,
    URL,
    JsonOpt,
    KeyOpt,
    UrlOpt,
    cli,
    client_for,
    err,
    fail,
    show,
)
from conveyor.cli.hints import explain

MAX_CHUNK = 1000  # the API's batch limit


def read_lines(path: str) -> list[dict[str, Any]]:
    """Every non-blank line as a create body; a bad line fails before anything is sent."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as exc:
        fail(f"cannot read {path}: {exc}", 2)
    tasks = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as exc:
            fail(f"{path} line {number} is not JSON: {exc}", 2)
        if not isinstance(body, dict) or "task_type" not in body:
            fail(f'{path} line {number}: expected an object with a task_type, e.g. '
                 '{"task_type": "echo", "payload": {"x": 1}}', 2)
        tasks.append(body)
    if not tasks:
        fail(f"{path} holds no tasks", 2)
    return tasks


@cli.command(rich_help_panel=TASKS, epilog="""Example: printf '%s\\n' '{"task_type": "echo",
"payload": {"i": 1}}' '{"task_type": "sleep", "payload": {"seconds": 1}}' > tasks.jsonl;
conveyor batch tasks.jsonl""")
def batch(
    path: Annotated[str, typer.Argument(
        help="File of JSON lines, one create body per line (- for stdin).")],
    chunk: Annotated[int, typer.Option(
        help="Tasks per request (one transaction each).", min=1, max=MAX_CHUNK)] = 500,
    url: UrlOpt = URL, api_key: KeyOpt = None, as_json: JsonOpt = False,
) -> None:
    """Submit many tasks from a file of JSON lines, with a progress bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from conveyor.client import ApiError

    tasks = read_lines(path)
    created: list[dict[str, Any]] = []
    columns = (TextColumn("submitting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with client_for(url, api_key) as client, Progress(*columns, console=err) as progress:
        bar = progress.add_task("submit", total=len(tasks))
        for start in range(0, len(tasks), chunk):
            part = tasks[start:start + chunk]
            try:
                infos = client.submit_many(part)
            except ApiError as exc:
                progress.stop()
                done = f"; the {len(created)} before them were submitted" if created else ""
                fail(f"tasks {start + 1}-{start + len(part)}: {explain(exc, url)}{done}")
            created += [{"task_id": i.task_id, "task_type": i.task_type, "created": i.created}
                        for i in infos]
            progress.advance(bar, len(part))
    new = sum(1 for c in created if c["created"] is not False)
    if as_json:
        show(created, True)
    err.print(f"submitted {len(created)} tasks ({new} new, {len(created) - new} already "
              "there by idempotency key)", highlight=False)
