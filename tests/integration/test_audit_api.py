"""The audit log through the API: each operator action writes exactly its row (acting key,
tenant, client address, before / after), a refused action writes none, and
``GET /api/v1/audit`` filters, pages and refuses bad filters; over the real app and store."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.apikeys import Scope, new_key
from conveyor.audit import Action, Actor, AuditEntry
from conveyor.bootstrap import Components

AUDIT = "/api/v1/audit"
CLIENT = "127.0.0.1"  # httpx's ASGI transport calls from here


async def _key(parts: Components, scope: Scope) -> tuple[str, dict[str, str]]:
    key, token = new_key(scope, scope.label, time.time())
    await parts.store.keys.put_key(key)
    return key.key_id, {"Authorization": f"Bearer {token}"}


class Api:
    def __init__(self, parts: Components, http: httpx.AsyncClient, admin: dict[str, str]):
        self.parts, self.http, self.admin = parts, http, admin

    async def rows(self, **params: Any) -> list[dict[str, Any]]:
        answer = await self.http.get(AUDIT, params=params, headers=self.admin)
        assert answer.status_code == 200, answer.text
        entries: list[dict[str, Any]] = answer.json()["entries"]
        return entries

    async def task(self, **body: Any) -> str:
        created = await self.http.post(
            "/api/v1/tasks", json={"task_type": "echo", **body}, headers=self.admin)
        assert created.status_code == 201, created.text
        task_id: str = created.json()["task_id"]
        return task_id


@pytest.fixture
async def api(both: Components) -> Any:
    """The app over in-process and over Redis coordination (pause flags and cancel signals
    live there)."""
    _, admin = await _key(both, Scope.ADMIN)
    app = create_app(both.service, auth_required=True)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as h:
        yield Api(both, h, admin)


async def _only_new(api: Api, before: int) -> dict[str, Any]:
    rows = await api.rows()
    assert len(rows) == before + 1, rows
    return rows[0]


def _who(row: dict[str, Any], key_id: str) -> None:
    assert (row["key_id"], row["tenant"], row["client"]) == (key_id, "default", CLIENT)


async def test_each_task_action_writes_its_row(api: Api) -> None:
    key_id, submitter = await _key(api.parts, Scope.SUBMIT)
    created = await api.http.post("/api/v1/tasks", json={"task_type": "echo", "delay_seconds": 60},
                                  headers=submitter)
    task_id = created.json()["task_id"]
    assert await api.rows() == []  # creating is not an operator action

    patched = await api.http.patch(f"/api/v1/tasks/{task_id}", json={"priority": "high"},
                                   headers=submitter)
    assert patched.status_code == 200
    row = await _only_new(api, 0)
    _who(row, key_id)
    assert (row["action"], row["target_kind"], row["target_id"]) == (
        "task.priority", "task", task_id)
    assert (row["before"]["priority"], row["after"]["priority"]) == ("normal", "high")

    assert (await api.http.post(f"/api/v1/tasks/{task_id}/cancel",
                                headers=submitter)).status_code == 200
    row = await _only_new(api, 1)
    _who(row, key_id)
    assert row["action"] == "task.cancel"
    assert (row["before"]["status"], row["after"]["status"]) == ("PENDING", "CANCELLED")

    assert (await api.http.post(f"/api/v1/tasks/{task_id}/retry",
                                headers=submitter)).status_code == 200
    row = await _only_new(api, 2)
    _who(row, key_id)
    assert row["action"] == "task.retry"
    assert (row["before"]["status"], row["after"]["status"]) == ("CANCELLED", "PENDING")


async def test_cancelling_a_running_task_records_the_signal(api: Api) -> None:
    task_id = await api.task(delay_seconds=60)
    [running] = await api.parts.store.moves.start([task_id], "w1", time.time())
    answer = await api.http.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.admin)
    assert answer.status_code == 202
    row = await _only_new(api, 0)
    assert row["action"] == "task.cancel" and row["target_id"] == task_id
    assert row["before"] == {"status": "PROCESSING", "priority": "normal",
                             "attempt": running.attempt}
    assert row["after"] == {"cancel_requested": True}


async def test_config_and_queue_actions_write_their_rows(api: Api) -> None:
    admin_id = api.admin["Authorization"].split("_")[1]
    url = "/api/v1/task-configs/mail"
    assert (await api.http.put(url, json={"timeout_seconds": 30},
                               headers=api.admin)).status_code == 200
    row = await _only_new(api, 0)
    _who(row, admin_id)
    assert (row["action"], row["target_kind"], row["target_id"]) == ("config.put", "config",
                                                                     "mail")
    assert row["before"] is None and row["after"]["timeout"] == 30
    assert (await api.http.put(url, json={"timeout_seconds": 45},
                               headers=api.admin)).status_code == 200
    row = await _only_new(api, 1)
    assert (row["before"]["timeout"], row["after"]["timeout"]) == (30, 45)
    assert (await api.http.delete(url, headers=api.admin)).status_code == 204
    row = await _only_new(api, 2)
    assert row["action"] == "config.delete"
    assert row["before"]["timeout"] == 45 and row["after"] is None

    assert (await api.http.post("/api/v1/queues/low/pause",
                                headers=api.admin)).status_code == 200
    row = await _only_new(api, 3)
    _who(row, admin_id)
    assert (row["action"], row["target_kind"], row["target_id"]) == ("queue.pause", "queue",
                                                                     "low")
    assert (row["before"], row["after"]) == ({"paused": False}, {"paused": True})
    assert (await api.http.post("/api/v1/queues/low/resume",
                                headers=api.admin)).status_code == 200
    row = await _only_new(api, 4)
    assert row["action"] == "queue.resume"
    assert (row["before"], row["after"]) == ({"paused": True}, {"paused": False})


async def test_refused_actions_write_no_row(api: Api) -> None:
    _, submitter = await _key(api.parts, Scope.SUBMIT)
    _, reader = await _key(api.parts, Scope.READ)
    pending = await api.task(delay_seconds=60)
    done = await api.task(delay_seconds=60)
    assert (await api.http.post(f"/api/v1/tasks/{done}/cancel",
                                headers=api.admin)).status_code == 200
    count = len(await api.rows())
    refused = [
        (api.http.post(f"/api/v1/tasks/{done}/cancel", headers=api.admin), 409),
        (api.http.patch(f"/api/v1/tasks/{done}", json={"priority": "low"},
                        headers=api.admin), 409),
        (api.http.post(f"/api/v1/tasks/{pending}/retry", headers=api.admin), 409),
        (api.http.post(f"/api/v1/tasks/{pending}/cancel", headers=submitter), 403),
        (api.http.post(f"/api/v1/tasks/{pending}/cancel", headers=reader), 403),
        (api.http.post("/api/v1/tasks/01NOSUCHTASK0000000000000/cancel",
                       headers=api.admin), 404),
        (api.http.put("/api/v1/task-configs/mail", json={"executor": "http"},
                      headers=api.admin), 422),
        (api.http.put("/api/v1/task-configs/mail", json={}, headers=submitter), 403),
        (api.http.delete("/api/v1/task-configs/nothing", headers=api.admin), 404),
        (api.http.post("/api/v1/queues/bad name!/pause", headers=api.admin), 422),
        (api.http.post("/api/v1/queues/low/pause", headers=reader), 403),
    ]
    for request, status in refused:
        answer = await request
        assert answer.status_code == status, answer.text
    assert len(await api.rows()) == count
    task = await api.parts.store.tasks.get(pending)
    assert task is not None and task.status == "PENDING"


async def test_audit_list_filters_pages_and_scope(api: Api) -> None:
    for name in ("a", "b", "c"):
        await api.http.post(f"/api/v1/queues/{name}/pause", headers=api.admin)
    task_id = await api.task(delay_seconds=60)
    await api.http.post(f"/api/v1/tasks/{task_id}/cancel", headers=api.admin)
    other = AuditEntry(Actor("k-acme", "acme", "10.1.1.1"), Action.TASK_CANCEL, task_id)
    await api.parts.store.audit.write(other, time.time())  # another tenant's row: never shown

    assert [r["target_id"] for r in await api.rows()] == [task_id, "c", "b", "a"]
    assert [r["target_id"] for r in await api.rows(action="queue.pause")] == ["c", "b", "a"]
    assert [r["action"] for r in await api.rows(target=task_id)] == ["task.cancel"]
    assert await api.rows(key_id="k-acme") == []
    assert await api.rows(since="2999-01-01T00:00:00") == []
    assert len(await api.rows(until="2999-01-01T00:00:00Z")) == 4

    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.http.get(AUDIT, params=params, headers=api.admin)).json()
        seen += [r["id"] for r in page["entries"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == len(set(seen)) == 4 and seen == sorted(seen, reverse=True)

    for params, field in (
        ({"action": "nope"}, "action"), ({"cursor": "abc"}, "cursor"),
        ({"since": "2026-02-01T00:00:00", "until": "2026-01-01T00:00:00"}, "since"),
        ({"since": "1960-01-01T00:00:00"}, "since"), ({"limit": 0}, "limit"),
    ):
        answer = await api.http.get(AUDIT, params=params, headers=api.admin)
        assert answer.status_code == 422, (params, answer.text)
        assert field in answer.text
    _, submitter = await _key(api.parts, Scope.SUBMIT)
    denied = await api.http.get(AUDIT, headers=submitter)
    assert denied.status_code == 403 and "admin" in denied.json()["error"]["message"]
