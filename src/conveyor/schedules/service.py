"""``ScheduleService``: what the API, the CLI and the client can do with schedules, per tenant.

Every check happens before anything is written, so a refused request (a bad expression, an
unknown zone or type, a backfill of too many fires) has changed nothing. A change that keeps
the trigger keeps ``next_fire_at``: re-putting an unchanged definition (the code sync at every
start) must not drop fires due during the downtime it follows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from conveyor.audit import AuditEntry
from conveyor.errors import NotFound, ValidationError
from conveyor.models import check_task_type
from conveyor.placement import place
from conveyor.schedules.cron import check_trigger, fires_between, next_fire
from conveyor.schedules.fires import build_fires, request_for
from conveyor.schedules.model import Fire, FireKind, FireOutcome, Schedule
from conveyor.schedules.plan import PlannedFire
from conveyor.service import TaskService
from conveyor.store.protocol import FireWrite

MAX_BACKFILL = 10_000
_CHUNK = 1000  # fires per transaction in a backfill


@dataclass(frozen=True, slots=True)
class Backfilled:
    fires: int    # fire times in the range
    created: int  # tasks created: fires not recorded before


class ScheduleService:
    def __init__(self, service: TaskService, clock: Callable[[], float] = time.time) -> None:
        self._service = service
        self._store = service.store.schedules
        self._clock = clock

    async def put(
        self, schedule: Schedule, *, audit: AuditEntry | None = None
    ) -> tuple[Schedule, bool]:
        """Create or replace by (tenant, name); True when created. A put that changes
        nothing writes nothing, so it records nothing either."""
        now = self._clock()
        await self.check(schedule, now)
        existing = await self._store.get(schedule.tenant, schedule.name)
        if existing is not None and existing.same_definition(schedule) and (
                existing.source == schedule.source):
            return existing, False
        keep = existing is not None and existing.trigger == schedule.trigger and (
            existing.paused == schedule.paused)
        upcoming = existing.next_fire_at if keep and existing else (
            None if schedule.paused else next_fire(schedule.trigger, now))
        await self._store.put(replace(
            schedule, next_fire_at=upcoming, updated_at=now,
            created_at=existing.created_at if existing else now,
        ), audit=audit)
        return await self.get(schedule.tenant, schedule.name), existing is None

    async def check(self, schedule: Schedule, now: float) -> None:
        """Refuse what cannot fire, naming the field; builds one task as a fire would."""
        try:
            check_task_type(schedule.name)
        except ValidationError:
            raise ValidationError(
                f"name {schedule.name!r} must match the task-type pattern "
                "[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}") from None
        check_trigger(schedule.trigger, now)
        await self._service.build([request_for(schedule, now, FireKind.MANUAL)])

    async def get(self, tenant: str, name: str) -> Schedule:
        found = await self._store.get(tenant, name)
        if found is None:
            raise NotFound(f"no schedule named {name!r}")
        return found

    async def list_schedules(self, tenant: str | None) -> list[Schedule]:
        return await self._store.list_schedules(tenant)

    async def delete(
        self, tenant: str, name: str, *, audit: AuditEntry | None = None
    ) -> None:
        if not await self._store.delete(tenant, name, audit=audit):
            raise NotFound(f"no schedule named {name!r}")

    async def pause(
        self, tenant: str, name: str, paused: bool, *, audit: AuditEntry | None = None
    ) -> Schedule:
        """Paused fires nothing; resumed, it fires from now on (no catch-up of the pause)."""
        found = await self.get(tenant, name)
        now = self._clock()
        upcoming = None if paused else next_fire(found.trigger, now)
        changed = await self._store.set_paused(tenant, name, paused, upcoming, now,
                                               audit=audit)
        if changed is None:
            raise NotFound(f"no schedule named {name!r}")
        return changed

    async def trigger(
        self, tenant: str, name: str, *, audit: AuditEntry | None = None
    ) -> Fire:
        """Fire now, outside the trigger, whatever the overlap policy."""
        found = await self.get(tenant, name)
        now = self._clock()
        [fire] = await self._record(found, [PlannedFire(now, FireOutcome.FIRED, "triggered")],
                                    FireKind.MANUAL, now, audit)
        return fire

    async def backfill(
        self, tenant: str, name: str, start: float, end: float, *,
        audit: AuditEntry | None = None,
    ) -> Backfilled:
        """The fires of [start, end], each once: fires recorded already are left as they are.
        Each transaction (at most ``_CHUNK`` fires) records ``audit`` with what it fired."""
        if end < start:
            raise ValidationError("backfill: 'to' must not be before 'from'")
        found = await self.get(tenant, name)
        times = fires_between(found.trigger, math.nextafter(start, -math.inf), end,
                              MAX_BACKFILL + 1)
        if len(times) > MAX_BACKFILL:
            raise ValidationError(
                f"backfill: the range holds more than {MAX_BACKFILL} fires; split it")
        now = self._clock()
        created = 0
        for i in range(0, len(times), _CHUNK):
            planned = [PlannedFire(at, FireOutcome.FIRED, "backfill")
                       for at in times[i:i + _CHUNK]]
            recorded = await self._record(found, planned, FireKind.SCHEDULED, now, audit)
            created += sum(1 for f in recorded if f.outcome == FireOutcome.FIRED)
        return Backfilled(len(times), created)

    async def fires(
        self, tenant: str, name: str, limit: int, before: float | None = None
    ) -> list[Fire]:
        await self.get(tenant, name)
        return await self._store.fires(tenant, name, limit, before)

    async def _record(
        self, schedule: Schedule, planned: list[PlannedFire], kind: FireKind, now: float,
        audit: AuditEntry | None,
    ) -> list[Fire]:
        fires = await build_fires(self._service, schedule, planned, kind, now, None)
        result = await self._store.fire([FireWrite(schedule, fires, advance=False)], now,
                                        audit=audit)
        await place(self._service.coordination.queues, result.created, now)
        return result.recorded
