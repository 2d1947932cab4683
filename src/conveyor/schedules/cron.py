"""Next-fire maths: a pure function of (trigger, time zone, last fire, now), so every rule here
is unit-tested on a fake clock and every leader computes the same fire times.

A cron expression describes wall-clock times in its zone; the expression itself is parsed and
walked by ``cronsim`` (5 fields, or 6 with seconds first; named days and months). We walk
*naive* wall-clock times and map each to an instant ourselves, because that is where the
daylight-saving rule lives: a wall time that does not exist (the hour skipped in spring) is
skipped, and one that occurs twice (the hour repeated in autumn) fires once, at its first
occurrence. Wall times only increase and each maps to its first occurrence, so the instants
increase strictly too. Interval triggers (``every_seconds``) ignore zones: they fire at
``anchor + k * every``, the anchor being ``start_at`` or else the epoch, so every leader and
every restart lands on the same grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from conveyor.errors import ValidationError

#: ``@name`` shorthands, as Vixie cron and croniter define them.
ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *", "@minutely": "* * * * *",
}
#: Wall times looked at per call before giving up: an expression that matches nothing for
#: this long (``0 0 30 2 *``) is refused when it is put, not looped over by a leader.
MAX_STEPS = 100_000


@dataclass(frozen=True, slots=True)
class Trigger:
    """When a schedule fires: exactly one of ``cron`` and ``every_seconds``."""

    cron: str | None = None
    every_seconds: int | None = None
    timezone: str = "UTC"
    start_at: float | None = None
    end_at: float | None = None

    def describe(self) -> str:
        return f"cron {self.cron!r} in {self.timezone}" if self.cron else (
            f"every {self.every_seconds} s")


def expand(expr: str) -> str:
    """The expression with an ``@alias`` replaced by its fields."""
    text = " ".join(expr.split())
    return ALIASES.get(text.lower(), text)


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(
            f"timezone: unknown time zone {name!r}; use an IANA name like "
            "'Europe/Berlin' or 'UTC'"
        ) from None


def check_trigger(trigger: Trigger, now: float) -> None:
    """Refuse a trigger that cannot work, with what is wrong: both or neither of cron and
    every_seconds, a bad expression, an unknown zone, a window that ends before it starts."""
    if (trigger.cron is None) == (trigger.every_seconds is None):
        raise ValidationError("give exactly one of cron and every_seconds")
    if trigger.every_seconds is not None and trigger.every_seconds <= 0:
        raise ValidationError(f"every_seconds must be > 0, got {trigger.every_seconds}")
    zone(trigger.timezone)
    if trigger.cron is not None:
        try:
            CronSim(expand(trigger.cron), datetime(2000, 1, 1))
        except (CronSimError, ValueError, LookupError) as exc:  # any refusal of the parser
            raise ValidationError(f"cron: invalid expression {trigger.cron!r}: {exc}") from None
    if trigger.start_at is not None and trigger.end_at is not None and (
            trigger.end_at <= trigger.start_at):
        raise ValidationError("end_at must be after start_at")
    if trigger.cron is not None and next_fire(trigger, max(now, trigger.start_at or now)) is None \
            and (trigger.end_at is None or trigger.end_at > now):
        raise ValidationError(f"cron: {trigger.cron!r} never fires")


def next_fire(trigger: Trigger, after: float) -> float | None:
    """The first fire time strictly after ``after`` (epoch seconds), or None when there is
    none (past ``end_at``, or an expression that never matches)."""
    floor = after if trigger.start_at is None else max(after, math.nextafter(
        trigger.start_at, -math.inf))
    found = (_next_interval(trigger, floor) if trigger.every_seconds is not None
             else _next_cron(trigger, floor))
    if found is None or (trigger.end_at is not None and found > trigger.end_at):
        return None
    return found


def fires_between(trigger: Trigger, after: float, until: float, limit: int) -> list[float]:
    """Fire times in (``after``, ``until``], oldest first, at most ``limit`` of them."""
    out: list[float] = []
    current = after
    while len(out) < limit:
        found = next_fire(trigger, current)
        if found is None or found > until:
            break
        out.append(found)
        current = found
    return out


def _next_interval(trigger: Trigger, after: float) -> float:
    every = float(trigger.every_seconds or 1)
    anchor = trigger.start_at if trigger.start_at is not None else 0.0
    steps = math.floor((after - anchor) / every) + 1
    return anchor + max(steps, 0) * every


def _next_cron(trigger: Trigger, after: float) -> float | None:
    tz = zone(trigger.timezone)
    try:
        # Whole seconds: cron fires are, and fromtimestamp would round a time a hair before a
        # second up onto it (then skip that second's fire).
        wall = datetime.fromtimestamp(math.floor(after), tz).replace(tzinfo=None)
        walk = CronSim(expand(trigger.cron or ""), wall)
    except (OverflowError, ValueError, OSError):
        return None  # beyond the years datetime holds: no fire there
    for _ in range(MAX_STEPS):
        try:
            candidate = next(walk)
        except (StopIteration, CronSimError, OverflowError, ValueError):
            return None
        instant = _first_instant(candidate, tz)
        # None: the wall time does not exist today; <= after: it is the second run of a
        # repeated hour that ``after`` already sits in.
        if instant is not None and instant > after:
            return instant
    return None


def _first_instant(wall: datetime, tz: ZoneInfo) -> float | None:
    """The first instant whose wall clock in ``tz`` reads ``wall``; None in a DST gap."""
    aware = wall.replace(tzinfo=tz, fold=0)
    instant = aware.timestamp()
    if datetime.fromtimestamp(instant, tz).replace(tzinfo=None) != wall:
        return None
    return instant


def fire_label(at: float) -> str:
    """A fire time as it appears in idempotency keys and messages: ISO 8601 UTC, with
    fractions only when it has them (manual triggers)."""
    moment = datetime.fromtimestamp(at, UTC)
    spec = "seconds" if moment.microsecond == 0 else "microseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")
