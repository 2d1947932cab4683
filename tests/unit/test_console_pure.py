"""The console's pure parts: a task's timeline, where a form may send the browser next, the
overview's alerts, and how durations read."""

from __future__ import annotations

from dataclasses import replace

import pytest

from conveyor.api.auth import CookieKey
from conveyor.api.guard import RequestGuard
from conveyor.console.figures import Due, percentiles, waiting
from conveyor.console.routing import back
from conveyor.console.snapshot import Backlog, Snapshot, alerts, lease_expiry
from conveyor.console.timeline import timeline
from conveyor.console.views import span
from conveyor.models import Lease, TaskLog, TaskStatus, WorkerInfo
from conveyor.operations import QueueState, Stats
from conveyor.store.protocol import Pending

P, R, S, F = (TaskStatus.PENDING, TaskStatus.PROCESSING, TaskStatus.SUCCESS,
              TaskStatus.FAILED)


def test_timeline_measures_the_time_spent_in_each_state() -> None:
    logs = [TaskLog("t", 1, P, R, 11.0, worker_id="w", epoch=3), TaskLog("t", 0, None, P, 10.0),
            TaskLog("t", 1, R, F, 14.0)]
    steps = timeline(logs, now=100.0)
    assert [s.log.to_status for s in steps] == [P, R, F]  # ordered by time
    assert [s.spent for s in steps] == [1.0, 3.0, None]  # the final state has no span
    assert [s.share for s in steps] == [0.25, 0.75, 0.0]
    assert not any(s.ongoing for s in steps)


def test_a_running_task_counts_its_current_state_up_to_now() -> None:
    steps = timeline([TaskLog("t", 0, None, P, 10.0), TaskLog("t", 1, P, R, 12.0)], now=20.0)
    assert steps[-1].spent == 8.0 and steps[-1].ongoing
    assert timeline([], now=1.0) == []


@pytest.mark.parametrize(("wanted", "went"), [
    ("/ui/tasks?status=PENDING", "/ui/tasks?status=PENDING"),
    ("/ui", "/ui"),
    ("//evil.example/ui", "/ui/x"),
    ("https://evil.example/", "/ui/x"),
    ("/ui/../api/v1/tasks", "/ui/x"),
    ("/ui\\\\evil", "/ui/x"),
    ("/uix", "/ui/x"),
    ("", "/ui/x"),
])
def test_back_goes_only_to_console_pages(wanted: str, went: str) -> None:
    assert back({"next": wanted}, "/ui/x") == went


def _snap(leader: Lease | None, workers: list[WorkerInfo], no_worker: dict[str, int]) -> Snapshot:
    stats = Stats({}, {}, 5.0, 10, {"SUCCESS": 5, "FAILED": 1, "TIMEOUT": 1})
    return Snapshot(100.0, stats, QueueState({}, set(), no_worker), leader, {}, workers)


def test_alerts_name_a_missing_leader_a_late_worker_and_stranded_types() -> None:
    fresh = WorkerInfo("w-fresh", "h", 1, 4, last_heartbeat=99.0)
    late = WorkerInfo("w-late", "h", 1, 4, last_heartbeat=80.0)
    found = alerts(_snap(None, [fresh, late], {"resize": 3}), heartbeat_interval=2.0)
    assert found == ["no scheduler holds the lease: nothing is being dispatched",
                     "late heartbeat from w-late",
                     "3 pending resize task(s): no live worker runs this type"]
    assert alerts(_snap(Lease("s", 1), [fresh], {}), 2.0) == []


def test_rates_are_per_second_over_the_window() -> None:
    snap = _snap(None, [], {})
    assert snap.created_rate == 2.0 and snap.rate("FAILED", "TIMEOUT") == 0.4


def test_spans_read_as_people_read_them() -> None:
    assert [span(0.25), span(12.34), span(245), span(3 * 3600 + 125), span(None)] == [
        "250 ms", "12.3 s", "4 min 5 s", "3 h 2 min", "—"]


def test_the_key_cookie_is_read_under_its_prefix_only() -> None:
    cookie = CookieKey("/ui", "conveyor_key")
    assert cookie.covers("/ui") and cookie.covers("/ui/tasks/x")
    assert not cookie.covers("/uix") and not cookie.covers("/api/v1/tasks")
    assert cookie.token(b"a=1; conveyor_key=cvk_id_secret; b=2") == b"Bearer cvk_id_secret"
    assert cookie.token(b"other=1") is None and cookie.token(None) is None
    assert cookie.token(b"conveyor_key=") is None


@pytest.mark.parametrize(("path", "refused"), [
    ("/ui/tasks/x/cancel", None), ("/ui/login", None), ("/ui", None),
    ("/uix/tasks", 415), ("/api/v1/tasks", 415),
])
def test_form_bodies_are_taken_under_the_console_only(path: str, refused: int | None) -> None:
    guard = RequestGuard(app=None, hosts=None, forms="/ui")  # type: ignore[arg-type]
    headers = {b"host": b"t", b"content-type": b"application/x-www-form-urlencoded",
               b"content-length": b"5"}
    found = guard._refusal("POST", path, headers)
    assert (found[0] if found else None) == refused


def test_a_backlog_is_growing_only_after_five_rising_minutes() -> None:
    backlog = Backlog()
    for minute, pending in enumerate([10, 20, 30, 40, 50]):
        backlog.add(60.0 * minute, pending)
        backlog.add(60.0 * minute + 30, 0)  # within the minute: not sampled
    assert not backlog.growing()  # four rises so far
    backlog.add(300.0, 60)
    assert backlog.growing()
    backlog.add(360.0, 60)  # a minute without growth
    assert not backlog.growing()
    snap = _snap(Lease("s", 1), [], {})
    assert alerts(snap, 2.0, growing=True)[0].startswith("the backlog has grown for 5 minutes")


def test_percentiles_take_the_nearest_rank() -> None:
    assert percentiles(float(n) for n in range(1, 101)) == {50: 50.0, 95: 95.0, 99: 99.0}
    assert percentiles([3.0]) == {50: 3.0, 95: 3.0, 99: 3.0}
    assert percentiles([]) == {}


def test_due_work_sums_counts_and_keeps_the_oldest_age() -> None:
    rows = [Pending("echo", "high", 2, 90.0), Pending("echo", "low", 1, 70.0),
            Pending("resize", "high", 4, 95.0)]
    due = waiting(rows, now=100.0, scan=10)
    assert due.by_type == {"echo": Due(3, 30.0), "resize": Due(4, 5.0)}
    assert due.by_priority == {"high": Due(6, 10.0), "low": Due(1, 30.0)}
    assert due.complete and not waiting(rows, 100.0, scan=7).complete


def test_the_lease_runs_out_a_ttl_after_the_electors_last_renewal() -> None:
    assert lease_expiry({"elector": 50.0, "promoter": 51.0}, ttl=10.0) == 60.0
    assert lease_expiry({}, ttl=10.0) is None


def test_a_count_past_the_cap_reads_as_more_than_the_cap() -> None:
    snap = replace(_snap(None, [], {}), cap=10)
    snap.stats.by_status.update(SUCCESS=11, FAILED=10)
    assert (snap.count("SUCCESS"), snap.count("FAILED"), snap.count("PENDING")) == (
        "> 10", "10", "0")
