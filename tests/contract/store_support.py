"""Helpers for the store contract suite: a task factory and an event recorder."""

from __future__ import annotations

import time
from dataclasses import replace

from conveyor.events import Event
from conveyor.ids import new_id
from conveyor.models import Priority, Task, TaskStatus


class Recorder:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def notify(self, event: Event) -> None:
        self.events.append(event)


def make_task(task_type: str = "echo", **changes: object) -> Task:
    now = time.time()
    t = Task(
        id=new_id(now), task_type=task_type, priority=Priority.NORMAL, payload={"x": 1},
        status=TaskStatus.PENDING, max_retries=2, timeout=30.0, created_at=now, run_at=now,
        metadata={"k": "v"},
    )
    return replace(t, **changes)  # type: ignore[arg-type]
