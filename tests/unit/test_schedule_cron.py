"""Next-fire maths (docs/design.md §9): pure, on fixed instants, across daylight-saving
changes, month ends and leap days; property tests that fires strictly increase and match."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.errors import ValidationError
from conveyor.schedules.cron import Trigger, check_trigger, fire_label, fires_between, next_fire

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def at(zone: str, *parts: int, fold: int = 0) -> float:
    return datetime(*parts, tzinfo=ZoneInfo(zone), fold=fold).timestamp()  # type: ignore[misc]


def walls(trigger: Trigger, after: float, count: int) -> list[str]:
    tz = ZoneInfo(trigger.timezone)
    found = fires_between(trigger, after, float("inf"), count)
    return [datetime.fromtimestamp(f, tz).isoformat() for f in found]


def test_a_wall_time_skipped_in_spring_does_not_fire_that_day() -> None:
    daily = Trigger(cron="30 2 * * *", timezone=BERLIN)
    assert walls(daily, at(BERLIN, 2026, 3, 28, 12), 2) == [
        "2026-03-30T02:30:00+02:00", "2026-03-31T02:30:00+02:00"]


def test_a_wall_time_repeated_in_autumn_fires_once() -> None:
    trigger = Trigger(cron="*/20 2 * * *", timezone=BERLIN)
    assert walls(trigger, at(BERLIN, 2026, 10, 25, 1), 4) == [
        "2026-10-25T02:00:00+02:00", "2026-10-25T02:20:00+02:00",
        "2026-10-25T02:40:00+02:00", "2026-10-26T02:00:00+01:00"]


def test_after_inside_the_repeated_hour_goes_on_after_it() -> None:
    trigger = Trigger(cron="*/20 * * * *", timezone=BERLIN)
    after = at(BERLIN, 2026, 10, 25, 2, 10, fold=1)
    assert walls(trigger, after, 1) == ["2026-10-25T03:00:00+01:00"]


def test_hourly_in_new_york_skips_the_missing_hour_and_repeats_none() -> None:
    hourly = Trigger(cron="@hourly", timezone=NEW_YORK)
    spring = walls(hourly, at(NEW_YORK, 2026, 3, 8, 0, 30), 3)
    assert spring == ["2026-03-08T01:00:00-05:00", "2026-03-08T03:00:00-04:00",
                      "2026-03-08T04:00:00-04:00"]
    autumn = fires_between(hourly, at(NEW_YORK, 2026, 11, 1, 0, 30),
                           at(NEW_YORK, 2026, 11, 1, 3, 30), 10)
    assert len(autumn) == 3  # 01:00 (once), 02:00, 03:00 across a 4-hour span
    assert autumn[1] - autumn[0] == 7200


def test_month_ends_and_leap_days() -> None:
    last_day = Trigger(cron="0 12 31 * *")
    assert walls(last_day, at("UTC", 2027, 1, 31, 13), 2) == [
        "2027-03-31T12:00:00+00:00", "2027-05-31T12:00:00+00:00"]
    leap = Trigger(cron="0 0 29 2 *")
    assert walls(leap, at("UTC", 2025, 1, 1), 2) == [
        "2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]


def test_six_fields_fire_by_the_second_and_names_work() -> None:
    every_two = Trigger(cron="*/2 * * * * *")
    start = at("UTC", 2026, 1, 1)
    assert fires_between(every_two, start, start + 6, 10) == [start + 2, start + 4, start + 6]
    weekdays = Trigger(cron="0 9 * * MON-FRI", timezone=BERLIN)
    found = walls(weekdays, at(BERLIN, 2026, 12, 4, 10), 2)  # a Friday
    assert found == ["2026-12-07T09:00:00+01:00", "2026-12-08T09:00:00+01:00"]
    assert walls(Trigger(cron="0 0 1 JAN *"), at("UTC", 2026, 6, 1), 1) == [
        "2027-01-01T00:00:00+00:00"]


def test_a_time_a_hair_before_a_fire_finds_that_fire() -> None:
    second = Trigger(cron="* * * * * *")
    start = at("UTC", 2026, 1, 1)
    assert next_fire(second, math.nextafter(start, -math.inf)) == start
    assert next_fire(second, start - 0.5) == start
    assert next_fire(second, start) == start + 1


def test_intervals_sit_on_a_grid_from_start_at_or_the_epoch() -> None:
    assert next_fire(Trigger(every_seconds=30), 95.0) == 120.0
    anchored = Trigger(every_seconds=30, start_at=1000.0)
    assert next_fire(anchored, 0.0) == 1000.0
    assert next_fire(anchored, 1000.0) == 1030.0


def test_the_window_bounds_fires() -> None:
    bounded = Trigger(cron="0 * * * *", start_at=at("UTC", 2026, 1, 1, 5, 30),
                      end_at=at("UTC", 2026, 1, 1, 7))
    assert fires_between(bounded, 0.0, float("inf"), 10) == [
        at("UTC", 2026, 1, 1, 6), at("UTC", 2026, 1, 1, 7)]
    assert next_fire(bounded, at("UTC", 2026, 1, 1, 7)) is None


@pytest.mark.parametrize(("trigger", "message"), [
    (Trigger(cron="61 * * * *"), "invalid expression"),
    (Trigger(cron="0 0 30 2 *"), "invalid expression"),
    (Trigger(cron="* * *"), "invalid expression"),
    (Trigger(cron="* * * * *", timezone="Mars/Olympus"), "unknown time zone"),
    (Trigger(every_seconds=0), "every_seconds must be > 0"),
    (Trigger(), "exactly one of"),
    (Trigger(cron="* * * * *", every_seconds=5), "exactly one of"),
    (Trigger(cron="* * * * *", start_at=100.0, end_at=50.0), "end_at must be after start_at"),
])
def test_bad_triggers_say_what_is_wrong(trigger: Trigger, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        check_trigger(trigger, 0.0)


def test_fire_labels_are_utc_iso() -> None:
    assert fire_label(1_700_000_000.0) == "2023-11-14T22:13:20Z"
    assert fire_label(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"


EXPRESSIONS = ["*/7 * * * *", "0 */3 * * *", "15 2 * * *", "0 0 * * SUN", "30 1 1,15 * *",
               "*/13 * * * * *", "0 30 2 * * *", "@daily", "0 0 29 2 *"]
ZONES = ["UTC", BERLIN, NEW_YORK, "Australia/Lord_Howe", "Asia/Shanghai"]


@settings(max_examples=150, deadline=None)
@given(expr=st.sampled_from(EXPRESSIONS), tz=st.sampled_from(ZONES),
       start=st.floats(min_value=0, max_value=4_000_000_000))
def test_fires_strictly_increase_and_match_the_expression(expr: str, tz: str,
                                                          start: float) -> None:
    from cronsim import CronSim

    from conveyor.schedules.cron import expand

    trigger = Trigger(cron=expr, timezone=tz)
    fires = fires_between(trigger, start, float("inf"), 6)
    assert fires and fires[0] > start
    assert all(a < b for a, b in itertools.pairwise(fires))
    zone = ZoneInfo(tz)
    for fire in fires:
        wall = datetime.fromtimestamp(fire, zone).replace(tzinfo=None)
        again = next(CronSim(expand(expr), wall - timedelta(seconds=1)))
        assert again.replace(tzinfo=None) == wall, "the fire's wall time matches the expression"
        assert fire == int(fire)
    assert datetime.fromtimestamp(fires[0], UTC).year >= 1970
