"""``submit --wait``: the id at once, a live status line while waiting, and on Ctrl-C how to
follow the task (it keeps running; only the waiting stops)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer

from conveyor.cli.common import call, err
from conveyor.cli.tables import state

if TYPE_CHECKING:
    from conveyor.client import Client, TaskInfo


def wait_showing(client: Client, info: TaskInfo, timeout: float, url: str) -> TaskInfo:
    err.print(f"submitted {info.task_id} ({info.task_type}); waiting up to {timeout:g}s",
              highlight=False, soft_wrap=True)
    from conveyor.client.wire import Poll

    began = time.monotonic()
    poll = Poll(timeout)
    task_id = info.task_id
    try:
        with err.status(f"{info.task_id}: {state(info.status)}") as line:
            while not info.is_final:
                time.sleep(poll.next_delay(f"task {task_id}"))
                info = call(lambda: client.get(task_id), url)
                line.update(f"{info.task_id}: {state(info.status)} (attempt {info.attempt}, "
                            f"{time.monotonic() - began:.1f}s)")
    except KeyboardInterrupt:
        err.print(f"stopped waiting; task {info.task_id} carries on. Follow it with: "
                  f"conveyor get {info.task_id}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None
    return info
