"""Schedules declared in code (``@app.periodic``) and their sync into the store at start.

The sync makes the store match the code without ever losing state: a missing schedule is
created, a changed one updated (keeping its next fire when the trigger is the same), an
unchanged one left alone (so fires due during the downtime are still caught up), and one the
code no longer declares is reported, not deleted: an operator may still want its history, or
an older version of the code may still be running elsewhere in a rolling deploy. A schedule
an operator paused stays paused. Each create or update is audited as ``schedule.put`` by the
``code`` actor (no key), in the transaction of the write.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from conveyor.audit import CODE as CODE_ACTOR
from conveyor.audit import Action, AuditEntry
from conveyor.errors import ConfigError, ValidationError
from conveyor.schedules.cron import Trigger, check_trigger
from conveyor.schedules.model import Overlap, Schedule, TaskTemplate
from conveyor.tenants import DEFAULT_TENANT

log = logging.getLogger(__name__)
CODE = "code"


def declare(
    name: str, task_type: str, *, cron: str | None, every_seconds: int | None,
    payload: dict[str, Any], timezone: str, overlap: str, catchup_window: float, jitter: float,
) -> Schedule:
    """A code-declared schedule of the default tenant, checked now: a mistake in a decorator
    stops the import with the reason rather than surfacing at the first scheduler start."""
    try:
        policy = Overlap(overlap)
    except ValueError:
        raise ConfigError(f"schedule {name!r}: overlap must be one of "
                          f"{', '.join(o.value for o in Overlap)}, not {overlap!r}") from None
    trigger = Trigger(cron=cron, every_seconds=every_seconds, timezone=timezone)
    try:
        check_trigger(trigger, 0.0)
    except ValidationError as exc:
        raise ConfigError(f"schedule {name!r}: {exc}") from None
    return Schedule(
        name=name, tenant=DEFAULT_TENANT, source=CODE, template=TaskTemplate(task_type, payload),
        trigger=trigger, overlap=policy, catchup_window=catchup_window, jitter=jitter,
    )


@dataclass
class SyncReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    undeclared: list[str] = field(default_factory=list)  # in the store from code, no longer


class Syncer(Protocol):
    """What ``sync`` needs of ``ScheduleService`` (kept narrow so tests can see the calls)."""

    async def put(
        self, schedule: Schedule, *, audit: AuditEntry | None = None
    ) -> tuple[Schedule, bool]: ...

    async def list_schedules(self, tenant: str) -> list[Schedule]: ...


async def sync(service: Syncer, declared: Iterable[Schedule]) -> SyncReport:
    report = SyncReport()
    wanted = {s.name: s for s in declared}
    stored = {s.name: s for s in await service.list_schedules(DEFAULT_TENANT)}
    for name, schedule in sorted(wanted.items()):
        before = stored.get(name)
        if before is not None:  # pausing is the operators' call, not the code's
            schedule = replace(schedule, paused=before.paused)
        if before is not None and before.source == CODE and before.same_definition(schedule):
            report.unchanged.append(name)
            continue
        await service.put(schedule, audit=AuditEntry(CODE_ACTOR, Action.SCHEDULE_PUT, name))
        (report.created if before is None else report.updated).append(name)
    report.undeclared = sorted(n for n, s in stored.items() if s.source == CODE and n not in wanted)
    if report.created or report.updated:
        log.info("schedules from code: created %s, updated %s",
                 report.created or "none", report.updated or "none")
    if report.undeclared:
        log.warning("schedules %s were declared in code but no longer are; left in place "
                    "(remove them with `conveyor schedules rm NAME`)", report.undeclared)
    return report
