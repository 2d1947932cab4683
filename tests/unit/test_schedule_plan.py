"""The firing plan of one due schedule (pure): catch-up window, the jump over a long outage,
the live-fire bound and the overlap policies."""

from __future__ import annotations

from dataclasses import replace

from conveyor.schedules.cron import Trigger
from conveyor.schedules.model import FireOutcome, Overlap, Schedule, TaskTemplate
from conveyor.schedules.plan import MISSED_ROWS, plan_due

NOW = 1_000_000.0


def due(every: int = 1, since: float = 0.0, **changes: object) -> Schedule:
    s = Schedule(name="s", template=TaskTemplate("echo"), trigger=Trigger(every_seconds=every),
                 next_fire_at=NOW - since, last_task_id="t0")
    return replace(s, **changes)  # type: ignore[arg-type]


def outcomes(s: Schedule, running: bool = False, limit: int = 100) -> list[str]:
    return [str(f.outcome) for f in plan_due(s, NOW, running, limit).fires]


def test_a_long_outage_records_a_bounded_number_of_missed_rows_then_jumps() -> None:
    plan = plan_due(due(since=86_400, catchup_window=5), NOW, False, 100)
    missed = [f for f in plan.fires if f.outcome == FireOutcome.MISSED]
    assert len(missed) == MISSED_ROWS and "up to the window" in (missed[-1].note or "")
    assert [f.fire_at for f in plan.fired] == [NOW - 5 + i for i in range(6)]
    assert plan.next_fire_at == NOW + 1


def test_live_fires_per_pass_are_bounded_and_the_rest_stay_due() -> None:
    plan = plan_due(due(since=50, catchup_window=60), NOW, False, 10)
    assert len(plan.fired) == 10 and plan.next_fire_at == NOW - 40


def test_overlap_policies_while_the_previous_task_runs() -> None:
    three = {"since": 2}
    assert outcomes(due(**three, overlap=Overlap.SKIP), running=True) == ["skipped"] * 3
    assert outcomes(due(**three, overlap=Overlap.BUFFER_ONE), running=True) == [
        "buffered", "skipped", "skipped"]
    assert outcomes(due(**three, overlap=Overlap.BUFFER_ONE, buffered=1), running=True) == [
        "skipped"] * 3
    assert outcomes(due(**three, overlap=Overlap.BUFFER_ALL), running=True) == ["buffered"] * 3
    cancel = plan_due(due(**three, overlap=Overlap.CANCEL_OTHER), NOW, True, 100)
    assert cancel.cancel_task_id == "t0" and len(cancel.fired) == 3
    assert outcomes(due(**three, overlap=Overlap.ALLOW), running=True) == ["fired"] * 3
    assert outcomes(due(**three, overlap=Overlap.SKIP), running=False) == ["fired"] * 3


def test_a_schedule_past_its_end_stops() -> None:
    s = due(since=0, trigger=Trigger(every_seconds=1, end_at=NOW))
    plan = plan_due(s, NOW, False, 100)
    assert len(plan.fired) == 1 and plan.next_fire_at is None
