"""The console's navigation: one entry per page, in order. A feature that brings its own
pages (workflows, say) adds its router in ``console.install`` and its entry here."""

from __future__ import annotations

from typing import NamedTuple


class Entry(NamedTuple):
    label: str
    path: str  # under the console's prefix


NAV: tuple[Entry, ...] = (
    Entry("Overview", ""),
    Entry("Tasks", "/tasks"),
    Entry("Queues", "/queues"),
    Entry("Workers", "/workers"),
    Entry("Schedules", "/schedules"),
    Entry("Workflows", "/workflows"),
    Entry("Drift", "/drift"),
)
