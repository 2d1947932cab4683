"""Tasks that ended at a chosen time, through the store's own moves (so their rows and logs are
what production writes), for the retention tests and benchmark."""

from __future__ import annotations

from conveyor.ids import new_id
from conveyor.models import Priority, Task, TaskStatus
from conveyor.store.protocol import Outcome, TaskStore

S = TaskStatus


def new_task(at: float, task_type: str = "echo") -> Task:
    return Task(
        id=new_id(at), task_type=task_type, priority=Priority.NORMAL, payload={"x": 1},
        status=S.PENDING, max_retries=0, timeout=30.0, created_at=at, run_at=at,
        metadata={"k": "v"},
    )


async def ended(store: TaskStore, status: TaskStatus, at: float, n: int = 1) -> list[Task]:
    """``n`` tasks that reached ``status`` at ``at`` (PENDING and PROCESSING: that were left
    there at ``at``), each with the log rows of its moves."""
    tasks = [new_task(at - 10) for _ in range(n)]
    await store.tasks.insert(tasks)
    ids = [t.id for t in tasks]
    if status is S.CANCELLED:
        for t in ids:
            await store.moves.cancel_pending(t, at, "cancelled by the test")
    elif status is not S.PENDING:
        await store.moves.start(ids, "w1", at - 1 if status.is_final else at)
        if status.is_final:
            await store.moves.finish(
                [Outcome(t, 1, status, error=None if status is S.SUCCESS else "x") for t in ids],
                at)
    return await store.tasks.get_many(ids)
