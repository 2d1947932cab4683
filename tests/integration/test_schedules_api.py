"""The schedule routes over the real app and store: create, read with next fire times, change,
pause and resume, trigger, backfill, history; bad input refused with a reason and nothing
written; another tenant's schedule is 404."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.audit import AuditQuery
from conveyor.bootstrap import Components
from conveyor.schedules.service import ScheduleService

BODY: dict[str, Any] = {"task_type": "echo", "payload": {"x": 1}, "every_seconds": 30,
                        "overlap": "allow", "priority": "high", "metadata": {"k": "v"}}


def client(parts: Components) -> httpx.AsyncClient:
    app = create_app(parts.service)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


async def test_create_read_change_and_remove(parts: Components) -> None:
    async with client(parts) as http:
        created = await http.put("/api/v1/schedules/tick", json=BODY)
        assert created.status_code == 201, created.text
        first = created.json()
        assert first["created"] is True and first["next_fire_at"] is not None
        assert (first["every_seconds"], first["priority"], first["source"]) == (30, "high", "api")
        same = await http.put("/api/v1/schedules/tick", json=BODY)
        assert same.status_code == 200 and same.json()["next_fire_at"] == first["next_fire_at"]
        cron = {**BODY, "every_seconds": None, "cron": "0 9 * * MON-FRI",
                "timezone": "Asia/Shanghai"}
        changed = (await http.put("/api/v1/schedules/tick", json=cron)).json()
        assert changed["cron"] == "0 9 * * MON-FRI" and changed["next_fire_at"].endswith(
            "01:00:00+00:00")  # 09:00 in Shanghai
        listed = (await http.get("/api/v1/schedules")).json()["schedules"]
        assert [s["name"] for s in listed] == ["tick"]
        paused = (await http.post("/api/v1/schedules/tick/pause")).json()
        assert paused["paused"] is True and paused["next_fire_at"] is None
        resumed = (await http.post("/api/v1/schedules/tick/resume")).json()
        assert resumed["paused"] is False and resumed["next_fire_at"] is not None
        assert (await http.delete("/api/v1/schedules/tick")).status_code == 204
        gone = await http.get("/api/v1/schedules/tick")
        assert gone.status_code == 404 and "no schedule named 'tick'" in gone.text
        assert (await http.delete("/api/v1/schedules/tick")).status_code == 404


async def test_trigger_and_backfill_fire_once_each(parts: Components) -> None:
    async with client(parts) as http:
        await http.put("/api/v1/schedules/tick", json=BODY)
        fired = await http.post("/api/v1/schedules/tick/trigger")
        assert fired.status_code == 201 and fired.json()["outcome"] == "fired"
        task = (await http.get(f"/api/v1/tasks/{fired.json()['task_id']}")).json()
        assert task["metadata"]["conveyor.schedule"] == "tick" and task["priority"] == "high"
        window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:04:59Z"}
        first = (await http.post("/api/v1/schedules/tick/backfill", json=window)).json()
        assert first == {"fires": 10, "created": 10}
        again = (await http.post("/api/v1/schedules/tick/backfill", json=window)).json()
        assert again == {"fires": 10, "created": 0}
        fires = (await http.get("/api/v1/schedules/tick/fires?limit=100")).json()["fires"]
        assert len(fires) == 11 and {f["kind"] for f in fires} == {"scheduled", "manual"}
        assert fires[-1]["fire_at"] == "2026-01-01T00:00:00+00:00"
        tasks = (await http.get("/api/v1/tasks?limit=100")).json()["tasks"]
        assert len(tasks) == 11


BAD = [
    ({"cron": "61 * * * *", "every_seconds": None}, "cron: invalid expression"),
    ({"cron": "* * * * *", "every_seconds": None, "timezone": "Mars/Base"}, "unknown time zone"),
    ({"every_seconds": 0}, "every_seconds must be > 0"),
    ({"every_seconds": -5}, "every_seconds must be > 0"),
    ({"start_at": "2026-02-01T00:00:00Z", "end_at": "2026-01-01T00:00:00Z"},
     "end_at must be after start_at"),
    ({"task_type": "no-such-type"}, "unknown task_type"),
    ({"cron": "* * * * *"}, "exactly one of cron and every_seconds"),
    ({"overlap": "sometimes"}, "overlap"),
    ({"jitter_seconds": -1}, "jitter_seconds"),
]


@pytest.mark.parametrize(("change", "message"), BAD)
async def test_bad_input_says_what_is_wrong_and_writes_nothing(
    parts: Components, change: dict[str, Any], message: str,
) -> None:
    async with client(parts) as http:
        answer = await http.put("/api/v1/schedules/bad", json={**BODY, **change})
        assert answer.status_code == 422 and message in answer.json()["error"]["message"]
        assert (await http.get("/api/v1/schedules")).json()["schedules"] == []


async def test_bad_names_and_oversized_backfills_are_refused(parts: Components) -> None:
    async with client(parts) as http:
        named = await http.put("/api/v1/schedules/has%20space", json=BODY)
        assert named.status_code == 422 and "task-type pattern" in named.text
        await http.put("/api/v1/schedules/tick", json={**BODY, "every_seconds": 1})
        huge = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
        refused = await http.post("/api/v1/schedules/tick/backfill", json=huge)
        assert refused.status_code == 422 and "more than 10000 fires" in refused.text
        backwards = {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
        assert (await http.post("/api/v1/schedules/tick/backfill",
                                json=backwards)).status_code == 422
        assert (await http.get("/api/v1/schedules/tick/fires")).json()["fires"] == []
        assert (await http.get("/api/v1/tasks")).json()["tasks"] == []


async def test_another_tenants_schedule_is_not_found(parts: Components) -> None:
    from conveyor.api.schedule_schemas import ScheduleIn

    other = ScheduleService(parts.service)
    await other.put(ScheduleIn(**BODY).to_schedule("acme", "theirs"))
    async with client(parts) as http:
        # Authentication off spans tenants for lists; by name, it acts in the default tenant.
        assert (await http.get("/api/v1/schedules?tenant=default")).json()["schedules"] == []
        for path in ("", "/fires"):
            assert (await http.get(f"/api/v1/schedules/theirs{path}")).status_code == 404
        assert (await http.post("/api/v1/schedules/theirs/trigger")).status_code == 404
        assert (await http.delete("/api/v1/schedules/theirs")).status_code == 404
    assert [s.name for s in await other.list_schedules("acme")] == ["theirs"]


async def test_changes_are_audited_and_refused_ones_are_not(parts: Components) -> None:
    async with client(parts) as http:
        assert (await http.put("/api/v1/schedules/tick", json={**BODY, "cron": "nope",
                                                              "every_seconds": None})
                ).status_code == 422
        huge = {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}
        await http.put("/api/v1/schedules/tick", json=BODY)
        assert (await http.post("/api/v1/schedules/tick/backfill", json=huge)).status_code == 422
        assert (await http.post("/api/v1/schedules/none/pause")).status_code == 404
        await http.put("/api/v1/schedules/tick", json=BODY)  # unchanged: nothing written
        await http.post("/api/v1/schedules/tick/pause")
        await http.post("/api/v1/schedules/tick/trigger")
        window = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:59Z"}
        await http.post("/api/v1/schedules/tick/backfill", json=window)
        await http.delete("/api/v1/schedules/tick")
    page = await parts.store.audit.list_entries(AuditQuery(), None)
    done = [r.entry for r in reversed(page.records)]
    assert [e.action for e in done] == ["schedule.put", "schedule.pause", "schedule.trigger",
                                        "schedule.backfill", "schedule.delete"]
    put, _, trigger, backfill, delete = done
    assert put.before is None and put.after["every_seconds"] == 30
    assert trigger.after["outcome"] == "fired" and trigger.after["task_id"]
    assert backfill.after["fires"] == 2 and backfill.detail is not None
    assert "2026-01-01T00:00:00" in backfill.detail
    assert delete.before["paused"] is True and delete.after is None
