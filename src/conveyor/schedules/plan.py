"""What one firing pass does with one due schedule: a pure function of the schedule, ``now``
and whether the previous fire's task is still running, so catch-up and every overlap policy
are unit-tested on a fake clock.

Fires in (``next_fire_at`` .. ``now``] older than the catch-up window are missed (recorded, at
most ``MISSED_ROWS`` rows a pass; beyond that the pass jumps to the window and notes how far).
The rest fire, oldest first. "Running" is the state of the previous fire's task as read at the
start of the pass; fires planned in the same pass (a catch-up after a failover) do not overlap
each other, so none inside the window is lost to the default ``skip``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from conveyor.schedules.cron import fire_label, next_fire
from conveyor.schedules.model import FireOutcome, Overlap, Schedule

MISSED_ROWS = 100
_OLD = "older than the catch-up window"
_WAITING = "waiting for the previous task"


@dataclass(frozen=True, slots=True)
class PlannedFire:
    fire_at: float
    outcome: FireOutcome
    note: str | None = None


@dataclass(slots=True)
class Plan:
    """Fires to record (those with outcome FIRED get a task) and the schedule's new state."""

    schedule: Schedule
    fires: list[PlannedFire] = field(default_factory=list)
    next_fire_at: float | None = None
    cancel_task_id: str | None = None  # cancel_other: the running task to cancel
    missed: int = 0

    @property
    def buffered(self) -> int:
        return sum(1 for f in self.fires if f.outcome == FireOutcome.BUFFERED)

    @property
    def fired(self) -> list[PlannedFire]:
        return [f for f in self.fires if f.outcome == FireOutcome.FIRED]


def plan_due(schedule: Schedule, now: float, running: bool, limit: int) -> Plan:
    """The pass for a schedule whose ``next_fire_at`` is due; at most ``limit`` live fires
    (the rest stay due and are taken by the next pass)."""
    plan = Plan(schedule)
    trigger = schedule.trigger
    cutoff = now - schedule.catchup_window
    current = schedule.next_fire_at
    while current is not None and current < cutoff and plan.missed < MISSED_ROWS:
        plan.fires.append(PlannedFire(current, FireOutcome.MISSED, _OLD))
        plan.missed += 1
        current = next_fire(trigger, current)
    if current is not None and current < cutoff:
        # A long outage of a frequent schedule: jump to the window rather than walk every fire.
        current = next_fire(trigger, math.nextafter(cutoff, -math.inf))
        plan.fires[-1] = PlannedFire(plan.fires[-1].fire_at, FireOutcome.MISSED,
                                     f"and every fire up to the window, {fire_label(cutoff)}")
    live: list[float] = []
    while current is not None and current <= now and len(live) < limit:
        live.append(current)
        current = next_fire(trigger, current)
    plan.next_fire_at = current
    _apply_overlap(plan, live, running)
    return plan


def _apply_overlap(plan: Plan, live: list[float], running: bool) -> None:
    policy = plan.schedule.overlap
    if not running or policy == Overlap.ALLOW:
        plan.fires.extend(PlannedFire(at, FireOutcome.FIRED) for at in live)
        return
    if policy == Overlap.CANCEL_OTHER:
        plan.cancel_task_id = plan.schedule.last_task_id
        plan.fires.extend(PlannedFire(at, FireOutcome.FIRED, "the previous task was cancelled")
                          for at in live)
        return
    room = {Overlap.BUFFER_ONE: max(0, 1 - plan.schedule.buffered),
            Overlap.BUFFER_ALL: len(live)}.get(policy, 0)
    for at in live:
        if room > 0:
            plan.fires.append(PlannedFire(at, FireOutcome.BUFFERED, _WAITING))
            room -= 1
        else:
            plan.fires.append(PlannedFire(at, FireOutcome.SKIPPED, "the previous task is running"))
