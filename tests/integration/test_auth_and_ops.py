"""API keys, scopes and ownership; the operations endpoints; over the real app and store."""

from __future__ import annotations

import time

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.apikeys import Scope, new_key
from conveyor.bootstrap import Components
from conveyor.scheduler.elector import Elector


async def _key(parts: Components, scope: Scope) -> tuple[str, dict[str, str]]:
    key, token = new_key(scope, scope.label, time.time())
    await parts.store.keys.put_key(key)
    return key.key_id, {"Authorization": f"Bearer {token}"}


def _client(parts: Components, auth: bool = True) -> httpx.AsyncClient:
    app = create_app(parts.service, auth_required=auth)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


ECHO = {"task_type": "echo", "payload": {"x": 1}}


async def test_missing_bad_and_revoked_keys_get_401(parts: Components) -> None:
    key_id, admin = await _key(parts, Scope.ADMIN)
    async with _client(parts) as http:
        missing = await http.post("/api/v1/tasks", json=ECHO)
        assert missing.status_code == 401
        assert "Authorization: Bearer" in missing.json()["error"]["message"]
        assert missing.headers["www-authenticate"] == "Bearer"
        garbage = await http.get("/api/v1/tasks", headers={"Authorization": "Bearer nope"})
        assert garbage.status_code == 401 and "malformed" in garbage.json()["error"]["message"]
        wrong = await http.get(
            "/api/v1/tasks", headers={"Authorization": f"Bearer cvk_{key_id}_wrongsecret"}
        )
        assert wrong.status_code == 401
        assert (await http.get("/api/v1/tasks", headers=admin)).status_code == 200
        assert await parts.store.keys.revoke_key(key_id, time.time())
        revoked = await http.get("/api/v1/tasks", headers=admin)
        assert revoked.status_code == 401 and "revoked" in revoked.json()["error"]["message"]
        assert (await http.get("/healthz")).status_code == 200


async def test_read_scope_can_only_query(parts: Components) -> None:
    _, reader = await _key(parts, Scope.READ)
    _, submitter = await _key(parts, Scope.SUBMIT)
    async with _client(parts) as http:
        created = await http.post("/api/v1/tasks", json=ECHO, headers=submitter)
        assert created.status_code == 201
        task_id = created.json()["task_id"]
        assert (await http.get(f"/api/v1/tasks/{task_id}", headers=reader)).status_code == 200
        denied = await http.post("/api/v1/tasks", json=ECHO, headers=reader)
        assert denied.status_code == 403 and "submit" in denied.json()["error"]["message"]
        cancel = await http.post(f"/api/v1/tasks/{task_id}/cancel", headers=reader)
        assert cancel.status_code == 403
        assert (await parts.store.tasks.get(task_id)).status == "PENDING"  # type: ignore[union-attr]


async def test_submit_scope_owns_its_tasks(parts: Components) -> None:
    mine_id, mine = await _key(parts, Scope.SUBMIT)
    _, other = await _key(parts, Scope.SUBMIT)
    _, admin = await _key(parts, Scope.ADMIN)
    async with _client(parts) as http:
        task_id = (await http.post("/api/v1/tasks", json=ECHO, headers=mine)).json()["task_id"]
        assert (await parts.store.tasks.get(task_id)).owner == mine_id  # type: ignore[union-attr]
        foreign = await http.post(f"/api/v1/tasks/{task_id}/cancel", headers=other)
        assert foreign.status_code == 403
        config = await http.put("/api/v1/task-configs/x", json={}, headers=mine)
        assert config.status_code == 403
        assert (await http.post(f"/api/v1/tasks/{task_id}/cancel", headers=mine)).status_code == 200
        task_id = (await http.post("/api/v1/tasks", json=ECHO, headers=mine)).json()["task_id"]
        by_admin = await http.post(f"/api/v1/tasks/{task_id}/cancel", headers=admin)
        assert by_admin.status_code == 200


async def test_keys_are_stored_hashed(parts: Components) -> None:
    key, token = new_key(Scope.READ, "k", time.time())
    await parts.store.keys.put_key(key)
    stored = await parts.store.keys.get_key(key.key_id)
    assert stored is not None and token.split("_", 2)[2] not in stored.secret_hash


async def test_operations_endpoints(parts: Components) -> None:
    worker = parts.worker()
    await worker.heartbeat.run_once(time.time())
    async with _client(parts, auth=False) as http:
        workers = (await http.get("/api/v1/workers")).json()["workers"]
        assert [w["worker_id"] for w in workers] == [worker.id]
        history = (await http.get("/api/v1/workers/history")).json()["workers"]
        assert [(w["worker_id"], w["state"]) for w in history] == [(worker.id, "alive")]
        assert (await http.get("/api/v1/queues")).json() == {
            "lengths": {"low": 0, "normal": 0, "high": 0, "delayed": 0}, "paused": [],
            "no_worker": {}, "tenants": {"low": {}, "normal": {}, "high": {}}}
        paused = await http.post("/api/v1/queues/low/pause")
        assert paused.json()["paused"] == ["low"]
        assert (await http.post("/api/v1/queues/echo/pause")).json()["paused"] == ["echo", "low"]
        bad = await http.post("/api/v1/queues/no%20such/pause")
        assert bad.status_code == 422
        assert (await http.post("/api/v1/queues/low/resume")).json()["paused"] == ["echo"]
        await http.post("/api/v1/tasks", json=ECHO)
        state = (await http.get("/api/v1/scheduler")).json()
        assert state["leader"] is None and state["queues"]["lengths"]["normal"] == 1
        stats = (await http.get("/api/v1/stats", params={"window": 60})).json()
        assert stats["by_status"] == {"PENDING": 1}
        assert stats["by_type"] == {"echo": {"PENDING": 1}}
        assert stats["created_per_second"] == pytest.approx(1 / 60)
        assert (await http.get("/api/v1/stats", params={"window": 1})).status_code == 422

        scheduler = parts.scheduler()
        await scheduler.elector.run_once(time.time())
        await scheduler.dispatcher.run_once(time.time())
        scheduler.dispatcher.last_run = time.time()
        await scheduler.reporter.run_once(time.time())
        state = (await http.get("/api/v1/scheduler")).json()
        assert state["leader"] == scheduler.id and state["epoch"] == 1
        assert list(state["duties"]) == ["dispatcher"] and state["standby"] == {}
        standby = Elector(parts.coordination.lease, parts.store.epochs, "standby-1", 15.0, 5.0)
        await standby.run_once(time.time())  # found the lease taken: a standby
        state = (await http.get("/api/v1/scheduler")).json()
        assert state["leader"] == scheduler.id and list(state["standby"]) == ["standby-1"]
        await standby.stop()  # withdrawn at once
        assert (await http.get("/api/v1/scheduler")).json()["standby"] == {}
    await worker.stop()
