"""A task's timeline from its ``task_logs`` rows (pure): each move with the time the task
then spent in the state it moved to, and the attempts they belong to."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor.models import TaskLog, TaskStatus

FINAL = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILED, TaskStatus.TIMEOUT,
                   TaskStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class Step:
    log: TaskLog
    spent: float | None  # seconds in ``log.to_status``; None for a final state
    share: float  # of the whole timeline, 0..1, for the bar drawn beside it
    ongoing: bool  # the task is in this state now


def timeline(logs: list[TaskLog], now: float) -> list[Step]:
    ordered = sorted(logs, key=lambda log: (log.at, log.id or 0))
    spans: list[float | None] = []
    for i, log in enumerate(ordered):
        if i + 1 < len(ordered):
            spans.append(max(0.0, ordered[i + 1].at - log.at))
        elif log.to_status in FINAL:
            spans.append(None)
        else:
            spans.append(max(0.0, now - log.at))
    total = sum(s for s in spans if s is not None) or 1.0
    last = len(ordered) - 1
    return [
        Step(log, spent, (spent or 0.0) / total, i == last and log.to_status not in FINAL)
        for i, (log, spent) in enumerate(zip(ordered, spans, strict=True))
    ]
