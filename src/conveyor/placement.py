"""Queue placement: where a PENDING task goes so the scheduler finds it.

One rule for everyone who makes a task PENDING (a create, a manual retry, a priority change,
a retry after a failure, the orphan sweep): due now goes on its priority queue, due later into
the delayed set, from which the promoter moves it up when it is due.
"""

from __future__ import annotations

from collections.abc import Sequence

from conveyor.coordination.protocol import TaskQueues
from conveyor.models import QueueItem, Task


def queue_item(task: Task) -> QueueItem:
    return QueueItem(task.id, task.task_type, task.priority, tenant=task.tenant,
                     worker=task.pinned_worker or "")


async def place(queues: TaskQueues, tasks: Sequence[Task], now: float) -> None:
    """Put PENDING tasks on their queue, or in the delayed set when they are due later."""
    due = [queue_item(t) for t in tasks if t.run_at <= now]
    later = [(queue_item(t), t.run_at) for t in tasks if t.run_at > now]
    if due:
        await queues.enqueue(due)
    if later:
        await queues.schedule(later)
