"""The dispatcher's read of the queues for one pass: the paused names and the priorities' heads.

One call, so a backend can answer it in one round trip (Redis: ``lua/heads.lua``); the
in-process and etcd backends answer it with ``paused`` and ``peek``, as ``read_heads`` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from conveyor.models import Priority, QueueItem

if TYPE_CHECKING:
    from conveyor.coordination.protocol import TaskQueues

STRICT_ORDER = (Priority.HIGH, Priority.NORMAL, Priority.LOW)


class Heads(NamedTuple):
    """What the queues hold for a pass: the paused names (priority labels and task types)
    and the first items of each unpaused priority that was read, in dispatch order."""

    paused: set[str]
    items: dict[Priority, list[QueueItem]]


async def read_heads(
    queues: TaskQueues, depth: int, weights: Mapping[str, int] | None, every: bool
) -> Heads:
    """``TaskQueues.heads`` from ``paused`` and one ``peek`` per priority read."""
    paused = await queues.paused()
    items: dict[Priority, list[QueueItem]] = {}
    candidates = 0
    for p in STRICT_ORDER:
        if p.label in paused or (not every and candidates >= depth):
            continue
        items[p] = await queues.peek(p, depth, weights)
        candidates += sum(i.task_type not in paused for i in items[p])
    return Heads(paused, items)
