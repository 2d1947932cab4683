"""The overview's derived figures (pure): percentiles of queue wait and run time, and how long
the pending work has been due, per priority and per type."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from conveyor.store.protocol import Pending

QUANTILES = (50, 95, 99)


def percentiles(values: Iterable[float]) -> dict[int, float]:
    """Nearest-rank p50 / p95 / p99 of ``values`` (empty when there are none)."""
    ordered = sorted(values)
    if not ordered:
        return {}
    last = len(ordered) - 1
    return {q: ordered[min(last, max(0, -(-q * len(ordered) // 100) - 1))] for q in QUANTILES}


@dataclass(frozen=True, slots=True)
class Due:
    count: int
    oldest_age: float  # seconds the longest-due one has waited


@dataclass(frozen=True, slots=True)
class Waiting:
    """Due PENDING work among the scanned rows, per priority label and per type."""

    by_priority: dict[str, Due] = field(default_factory=dict)
    by_type: dict[str, Due] = field(default_factory=dict)
    complete: bool = True  # every due PENDING row was scanned (else counts are lower bounds)


def waiting(rows: Sequence[Pending], now: float, scan: int) -> Waiting:
    by_priority: dict[str, Due] = {}
    by_type: dict[str, Due] = {}
    for row in rows:
        for key, into in ((row.priority, by_priority), (row.task_type, by_type)):
            held = into.get(key)
            age = now - row.oldest_due
            into[key] = Due(row.count, age) if held is None else Due(
                held.count + row.count, max(held.oldest_age, age))
    return Waiting(by_priority, by_type, sum(r.count for r in rows) < scan)
