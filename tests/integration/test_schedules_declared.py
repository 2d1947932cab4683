"""``@app.periodic`` and the sync of code-declared schedules into the store at start: created
if missing, updated if changed, never duplicated, left alone (reported) once undeclared."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from conveyor.audit import AuditQuery
from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.errors import ConfigError
from conveyor.registrations import Conveyor
from conveyor.schedules.declared import sync
from conveyor.schedules.model import Overlap
from conveyor.schedules.service import ScheduleService
from conveyor.tenants import DEFAULT_TENANT

app = Conveyor()


@app.periodic("*/5 * * * *", name="nightly-report", timezone="Asia/Shanghai", overlap="skip")
async def report() -> dict[str, bool]:
    return {"ok": True}


@app.periodic(every_seconds=30)
async def heartbeat() -> None:
    return None


def test_periodic_registers_the_task_and_the_schedule() -> None:
    assert {"report", "heartbeat"} <= set(app.registrations)
    declared = app.periodics["nightly-report"]
    assert declared.template.task_type == "report" and declared.tenant == DEFAULT_TENANT
    assert declared.trigger.timezone == "Asia/Shanghai" and declared.overlap == Overlap.SKIP
    assert app.periodics["heartbeat"].trigger.every_seconds == 30


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cron": "nope"}, "invalid expression"),
    ({"cron": "* * * * *", "timezone": "Nowhere/Land"}, "unknown time zone"),
    ({"cron": "* * * * *", "overlap": "maybe"}, "overlap must be one of"),
    ({"every_seconds": 0}, "every_seconds must be > 0"),
])
def test_a_bad_declaration_fails_at_import(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Conveyor().periodic(**kwargs)(heartbeat.registration.func)  # type: ignore[arg-type]


async def test_sync_creates_updates_keeps_and_reports(tmp_path: Path) -> None:
    parts = await build(load_settings(database_url=str(tmp_path / "c.db")), standalone=True,
                        app=app)
    await parts.store.migrate()
    try:
        service = ScheduleService(parts.service)
        first = await sync(service, parts.periodics)
        assert first.created == ["heartbeat", "nightly-report"]
        before = await service.get(DEFAULT_TENANT, "heartbeat")
        again = await sync(service, parts.periodics)
        assert again.unchanged == ["heartbeat", "nightly-report"] and not again.created
        assert (await service.get(DEFAULT_TENANT, "heartbeat")).next_fire_at == before.next_fire_at
        changed = [replace(s, jitter=5.0) if s.name == "heartbeat" else s
                   for s in parts.periodics if s.name != "nightly-report"]
        third = await sync(service, changed)
        assert third.updated == ["heartbeat"] and third.undeclared == ["nightly-report"]
        kept = await service.get(DEFAULT_TENANT, "heartbeat")
        assert kept.jitter == 5.0 and kept.next_fire_at == before.next_fire_at
        names = [s.name for s in await service.list_schedules(DEFAULT_TENANT)]
        assert names == ["heartbeat", "nightly-report"]  # undeclared: reported, not deleted
        page = await parts.store.audit.list_entries(AuditQuery(), None)
        audited = [(r.entry.target_id, r.entry.actor.client) for r in reversed(page.records)]
        assert audited == [("heartbeat", "code"), ("nightly-report", "code"),
                           ("heartbeat", "code")]  # created twice, updated once; unchanged: none
    finally:
        await parts.close()
