"""Rows ↔ models for ``schedules`` and ``schedule_fires``."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from conveyor.models import Priority
from conveyor.schedules.cron import Trigger
from conveyor.schedules.model import Fire, FireKind, FireOutcome, Overlap, Schedule, TaskTemplate
from conveyor.store.rows import dumps


def definition_row(s: Schedule) -> dict[str, Any]:
    """The columns a PUT sets; firing state (last fire, buffered, missed) is the leader's."""
    t, g = s.template, s.trigger
    return {
        "task_type": t.task_type, "payload": dumps(t.payload),
        "priority": None if t.priority is None else int(t.priority),
        "timeout": t.timeout, "max_retries": t.max_retries, "metadata": dumps(t.metadata),
        "cron": g.cron, "every_seconds": g.every_seconds, "timezone": g.timezone,
        "start_at": g.start_at, "end_at": g.end_at,
        "overlap": str(s.overlap), "catchup_window": s.catchup_window, "jitter": s.jitter,
        "paused": s.paused, "source": s.source, "next_fire_at": s.next_fire_at,
        "updated_at": s.updated_at,
    }


def new_row(s: Schedule) -> dict[str, Any]:
    """What only a new row gets."""
    return {"last_fire_at": None, "last_task_id": None, "buffered": 0, "missed": 0,
            "created_at": s.created_at, "version": 0}


def schedule_from_row(r: sa.RowMapping) -> Schedule:
    return Schedule(
        name=r["name"], tenant=r["tenant"],
        template=TaskTemplate(
            task_type=r["task_type"], payload=orjson.loads(r["payload"]),
            priority=None if r["priority"] is None else Priority(r["priority"]),
            timeout=r["timeout"], max_retries=r["max_retries"],
            metadata=orjson.loads(r["metadata"]),
        ),
        trigger=Trigger(
            cron=r["cron"], every_seconds=r["every_seconds"], timezone=r["timezone"],
            start_at=r["start_at"], end_at=r["end_at"],
        ),
        overlap=Overlap(r["overlap"]), catchup_window=r["catchup_window"], jitter=r["jitter"],
        paused=bool(r["paused"]), source=r["source"], next_fire_at=r["next_fire_at"],
        last_fire_at=r["last_fire_at"], last_task_id=r["last_task_id"],
        buffered=r["buffered"], missed=r["missed"], created_at=r["created_at"],
        updated_at=r["updated_at"], version=r["version"],
    )


def fire_row(f: Fire) -> dict[str, Any]:
    return {"tenant": f.tenant, "name": f.name, "fire_at": f.fire_at, "kind": str(f.kind),
            "outcome": str(f.outcome), "task_id": f.task_id, "recorded_at": f.recorded_at,
            "epoch": f.epoch, "note": f.note}


def fire_from_row(r: sa.RowMapping) -> Fire:
    return Fire(
        tenant=r["tenant"], name=r["name"], fire_at=r["fire_at"], kind=FireKind(r["kind"]),
        outcome=FireOutcome(r["outcome"]), task_id=r["task_id"], recorded_at=r["recorded_at"],
        epoch=r["epoch"], note=r["note"],
    )


FireKey = tuple[str, str, float, str]


def fire_key(f: Fire) -> FireKey:
    return (f.tenant, f.name, f.fire_at, str(f.kind))
