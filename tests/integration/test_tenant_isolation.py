"""Tenant isolation over every route of the API, table-driven.

Tenant ``acme`` owns a pending task, a cancelled task, a task config of a type only it has, a
recorded worker running that type, and its keys. Tenant ``bravo`` then calls every route of the
app with acme's ids: each answers 404 exactly as for a missing id, or a list / count without
acme's objects, or a refusal that names no acme object; and acme's objects are unchanged
afterwards. ``ROUTES`` must hold an entry for every route ``create_app`` serves, so a route
added later without a tenant check here fails ``test_every_route_has_a_tenant_check``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Mount, Route

from conveyor.api.app import create_app
from conveyor.apikeys import Scope, new_key
from conveyor.bootstrap import Components
from conveyor.ids import new_id
from conveyor.models import WorkerInfo

SECRET_TYPE = "acme_only_type"
SECRET_KEY = "acme-idempotency"
SECRET_SCHEDULE = "acme-nightly"


@dataclass
class World:
    http: httpx.AsyncClient
    parts: Components
    acme: dict[str, dict[str, str]]  # scope → headers
    bravo: dict[str, dict[str, str]]
    superadmin: dict[str, str]
    pending: str = ""
    cancelled: str = ""
    workflow: str = ""
    workflow_tasks: list[str] = field(default_factory=list)
    acme_keys: list[str] = field(default_factory=list)
    bravo_key_id: str = ""

    @property
    def secrets(self) -> list[str]:
        """Strings that must never appear in an answer to bravo."""
        return [self.pending, self.cancelled, self.workflow, SECRET_TYPE, SECRET_KEY,
                SECRET_SCHEDULE, *self.acme_keys]


async def _key(parts: Components, scope: Scope, tenant: str) -> tuple[str, dict[str, str]]:
    key, token = new_key(scope, f"{tenant}-{scope.label}", time.time(), tenant)
    await parts.store.keys.put_key(key)
    return key.key_id, {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def world(parts: Components) -> World:
    app = create_app(parts.service, auth_required=True, metrics=parts.metrics)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")
    acme, bravo, acme_ids = {}, {}, []
    for scope in (Scope.READ, Scope.SUBMIT, Scope.ADMIN):
        key_id, acme[scope.label] = await _key(parts, scope, "acme")
        acme_ids.append(key_id)
        bravo_id, bravo[scope.label] = await _key(parts, scope, "bravo")
    _, superadmin = await _key(parts, Scope.SUPERADMIN, "default")
    w = World(http, parts, acme, bravo, superadmin, acme_keys=acme_ids, bravo_key_id=bravo_id)
    put = await http.put(f"/api/v1/task-configs/{SECRET_TYPE}", headers=acme["admin"],
                         json={"executor": "http", "executor_config": {"url": "http://a.test"}})
    assert put.status_code == 200 and put.json()["tenant"] == "acme"
    body = {"task_type": "echo", "idempotency_key": SECRET_KEY, "payload": {"a": 1}}
    created = await http.post("/api/v1/tasks", json=body, headers=acme["submit"])
    assert created.status_code == 201 and created.json()["tenant"] == "acme"
    w.pending = created.json()["task_id"]
    other = await http.post("/api/v1/tasks", json={"task_type": SECRET_TYPE},
                            headers=acme["submit"])
    w.cancelled = other.json()["task_id"]
    assert (await http.post(f"/api/v1/tasks/{w.cancelled}/cancel",
                            headers=acme["submit"])).status_code == 200
    node = {"task_type": "echo", "priority": "low", "delay_seconds": 600}
    flow = {"name": "acme-flow", "tasks": {"a": node, "b": {**node, "after": ["a"]}}}
    made_flow = await http.post("/api/v1/workflows", json=flow, headers=acme["submit"])
    assert made_flow.status_code == 201, made_flow.text
    w.workflow = made_flow.json()["workflow_id"]
    w.workflow_tasks = list(made_flow.json()["nodes"].values())
    schedule = {"task_type": "echo", "every_seconds": 3600, "paused": True}
    made = await http.put(f"/api/v1/schedules/{SECRET_SCHEDULE}", json=schedule,
                          headers=acme["admin"])
    assert made.status_code == 201, made.text
    worker = WorkerInfo("w-1", "h", 1, 4, types=(SECRET_TYPE, "echo"),
                        started_at=time.time(), last_heartbeat=time.time())
    await parts.coordination.registry.heartbeat(worker, 30.0)
    await parts.store.workers.record_workers([worker], "alive", time.time())
    return w


# -- checks -------------------------------------------------------------------------------

Check = Callable[[World], Awaitable[None]]


def clean(w: World, response: httpx.Response, echoed: str = "") -> None:
    """An answer to bravo names none of acme's objects (but what bravo itself sent)."""
    for secret in w.secrets:
        if secret == echoed:
            continue
        assert secret not in response.text, (response.request.url, secret)


async def not_found_like_missing(w: World, method: str, template: str, **kw: object) -> None:
    """Acme's id answers 404 with the very body a never-made id gets."""
    missing = new_id(time.time())
    for role in ("admin", "submit"):
        theirs = await w.http.request(method, template.format(id=w.pending), headers=w.bravo[role],
                                      **kw)  # type: ignore[arg-type]
        nobody = await w.http.request(method, template.format(id=missing), headers=w.bravo[role],
                                      **kw)  # type: ignore[arg-type]
        assert theirs.status_code == nobody.status_code == 404, (template, theirs.text)
        assert theirs.text.replace(w.pending, "ID") == nobody.text.replace(missing, "ID")
    cancelled = await w.http.request(method, template.format(id=w.cancelled),
                                     headers=w.bravo["admin"], **kw)  # type: ignore[arg-type]
    assert cancelled.status_code == 404


async def get_clean(w: World, path: str, role: str = "admin") -> httpx.Response:
    response = await w.http.get(path, headers=w.bravo[role])
    assert response.status_code == 200, response.text
    clean(w, response)
    return response


async def create_task(w: World) -> None:
    body = {"task_type": "echo", "idempotency_key": SECRET_KEY}
    mine = await w.http.post("/api/v1/tasks", json=body, headers=w.bravo["submit"])
    assert mine.status_code == 201 and mine.json()["tenant"] == "bravo"  # not acme's task
    clean(w, mine, SECRET_KEY)
    unknown = await w.http.post("/api/v1/tasks", json={"task_type": SECRET_TYPE},
                                headers=w.bravo["submit"])
    assert unknown.status_code == 422  # acme's config does not make the type known to bravo
    named = await w.http.post("/api/v1/tasks?tenant=acme", json=body, headers=w.bravo["admin"])
    assert named.status_code == 403
    # A parent of another tenant is refused as a missing one is, by the very same text.
    missing = new_id(time.time())
    theirs, nobody = [
        await w.http.post("/api/v1/tasks", json={"task_type": "echo", "depends_on": [p]},
                          headers=w.bravo["submit"]) for p in (w.pending, missing)]
    assert theirs.status_code == nobody.status_code == 422
    assert theirs.text.replace(w.pending, "ID") == nobody.text.replace(missing, "ID")


async def create_batch(w: World) -> None:
    body = {"tasks": [{"task_type": "echo", "idempotency_key": SECRET_KEY}]}
    mine = await w.http.post("/api/v1/tasks/batch", json=body, headers=w.bravo["submit"])
    assert mine.status_code == 201 and mine.json()["tasks"][0]["created"] is True
    clean(w, mine, SECRET_KEY)


async def list_tasks(w: World) -> None:
    for query in ("", "?type=echo", "?status=PENDING", "?status=CANCELLED", "?include=payload"):
        await get_clean(w, f"/api/v1/tasks{query}", "read")
    named = await w.http.get("/api/v1/tasks?tenant=acme", headers=w.bravo["admin"])
    assert named.status_code == 403


async def get_task(w: World) -> None:
    await not_found_like_missing(w, "GET", "/api/v1/tasks/{id}")


async def patch_task(w: World) -> None:
    await not_found_like_missing(w, "PATCH", "/api/v1/tasks/{id}", json={"priority": "high"})


async def cancel_task(w: World) -> None:
    await not_found_like_missing(w, "POST", "/api/v1/tasks/{id}/cancel")


async def retry_task(w: World) -> None:
    await not_found_like_missing(w, "POST", "/api/v1/tasks/{id}/retry")
    retry = await w.http.post(f"/api/v1/tasks/{w.cancelled}/retry", headers=w.bravo["admin"])
    assert retry.status_code == 404


async def task_logs(w: World) -> None:
    await not_found_like_missing(w, "GET", "/api/v1/tasks/{id}/logs")


async def list_configs(w: World) -> None:
    await get_clean(w, "/api/v1/task-configs", "read")


async def get_config(w: World) -> None:
    theirs = await w.http.get(f"/api/v1/task-configs/{SECRET_TYPE}", headers=w.bravo["read"])
    nobody = await w.http.get("/api/v1/task-configs/never_made", headers=w.bravo["read"])
    assert theirs.status_code == nobody.status_code == 404
    assert theirs.text.replace(SECRET_TYPE, "T") == nobody.text.replace("never_made", "T")


async def put_config(w: World) -> None:
    own = {"executor": "http", "executor_config": {"url": "http://b.test"}}
    put = await w.http.put(f"/api/v1/task-configs/{SECRET_TYPE}", json=own,
                           headers=w.bravo["admin"])
    assert put.status_code == 200 and put.json()["tenant"] == "bravo"  # its own config
    await w.http.delete(f"/api/v1/task-configs/{SECRET_TYPE}", headers=w.bravo["admin"])


async def delete_config(w: World) -> None:
    gone = await w.http.delete(f"/api/v1/task-configs/{SECRET_TYPE}", headers=w.bravo["admin"])
    assert gone.status_code == 404


async def workers(w: World) -> None:
    listed = await get_clean(w, "/api/v1/workers", "read")
    assert listed.json()["workers"][0]["types"] == ["echo"]  # acme's type is left out


async def worker_history(w: World) -> None:
    listed = await get_clean(w, "/api/v1/workers/history", "read")
    assert listed.json()["workers"][0]["types"] == ["echo"]


async def queues(w: World) -> None:
    answer = await get_clean(w, "/api/v1/queues", "read")
    assert sum(answer.json()["lengths"].values()) == 0  # acme's pending task is not counted


async def scheduler(w: World) -> None:
    answer = await get_clean(w, "/api/v1/scheduler", "read")
    assert sum(answer.json()["queues"]["lengths"].values()) == 0


async def stats(w: World) -> None:
    answer = (await get_clean(w, "/api/v1/stats", "read")).json()
    assert answer["by_status"] == {} and answer["created_per_second"] == 0


async def pause(w: World) -> None:
    refused = await w.http.post("/api/v1/queues/low/pause", headers=w.bravo["admin"])
    assert refused.status_code == 403  # every tenant's queues: not a tenant admin's to stop
    clean(w, refused)


async def resume(w: World) -> None:
    refused = await w.http.post("/api/v1/queues/low/resume", headers=w.bravo["admin"])
    assert refused.status_code == 403


async def drain_worker(w: World) -> None:
    refused = await w.http.post("/api/v1/workers/w-1/drain", headers=w.bravo["admin"])
    assert refused.status_code == 403  # the fleet runs every tenant's work
    clean(w, refused)
    assert await w.parts.coordination.registry.drain_requested("w-1") is None


async def list_keys(w: World) -> None:
    listed = await get_clean(w, "/api/v1/keys")
    assert {k["tenant"] for k in listed.json()["keys"]} == {"bravo"}


async def create_key(w: World) -> None:
    made = await w.http.post("/api/v1/keys", json={"scope": "read"}, headers=w.bravo["admin"])
    assert made.status_code == 201 and made.json()["tenant"] == "bravo"
    token = made.json()["key"]
    mine = await w.http.get("/api/v1/tasks", headers={"Authorization": f"Bearer {token}"})
    clean(w, mine)
    superadmin = await w.http.post("/api/v1/keys", json={"scope": "superadmin"},
                                   headers=w.bravo["admin"])
    assert superadmin.status_code == 422 and "CLI" in superadmin.text


async def revoke_key(w: World) -> None:
    for key_id in w.acme_keys:
        refused = await w.http.delete(f"/api/v1/keys/{key_id}", headers=w.bravo["admin"])
        nobody = await w.http.delete("/api/v1/keys/0000000000000000", headers=w.bravo["admin"])
        assert refused.status_code == nobody.status_code == 404
        assert refused.text.replace(key_id, "K") == nobody.text.replace("0000000000000000", "K")


async def audit(w: World) -> None:
    """Acme's config put and cancel wrote audit rows; bravo's admin sees none of them."""
    for query in ("", f"?target={w.cancelled}", "?action=task.cancel"):
        listed = await get_clean(w, f"/api/v1/audit{query}")
        assert all(e["tenant"] == "bravo" for e in listed.json()["entries"])
    named = await w.http.get("/api/v1/audit?tenant=acme", headers=w.bravo["admin"])
    assert named.status_code == 403
    spanning = await w.http.get("/api/v1/audit?tenant=acme", headers=w.superadmin)
    assert {e["target_id"] for e in spanning.json()["entries"]} >= {w.cancelled, SECRET_TYPE}


async def schedule_not_found(w: World, method: str, suffix: str = "", **kw: object) -> None:
    """Acme's schedule answers 404 with the very body a never-made name gets."""
    for role in ("admin", "read"):
        theirs = await w.http.request(method, f"/api/v1/schedules/{SECRET_SCHEDULE}{suffix}",
                                      headers=w.bravo[role], **kw)  # type: ignore[arg-type]
        nobody = await w.http.request(method, f"/api/v1/schedules/never-made{suffix}",
                                      headers=w.bravo[role], **kw)  # type: ignore[arg-type]
        assert theirs.status_code == nobody.status_code, (suffix, theirs.text)
        assert theirs.status_code in (403, 404), theirs.text  # 403: a read key may not change
        assert theirs.text.replace(SECRET_SCHEDULE, "S") == nobody.text.replace("never-made", "S")


async def list_schedules(w: World) -> None:
    listed = await get_clean(w, "/api/v1/schedules", "read")
    assert listed.json()["schedules"] == []


async def put_schedule(w: World) -> None:
    own = {"task_type": "echo", "every_seconds": 60, "paused": True}
    put = await w.http.put(f"/api/v1/schedules/{SECRET_SCHEDULE}", json=own,
                           headers=w.bravo["admin"])
    assert put.status_code == 201, put.text  # bravo's own schedule of the same name
    await w.http.delete(f"/api/v1/schedules/{SECRET_SCHEDULE}", headers=w.bravo["admin"])


async def get_schedule(w: World) -> None:
    await schedule_not_found(w, "GET")


async def delete_schedule(w: World) -> None:
    await schedule_not_found(w, "DELETE")


async def pause_schedule(w: World) -> None:
    await schedule_not_found(w, "POST", "/pause")


async def resume_schedule(w: World) -> None:
    await schedule_not_found(w, "POST", "/resume")


async def trigger_schedule(w: World) -> None:
    await schedule_not_found(w, "POST", "/trigger")


async def backfill_schedule(w: World) -> None:
    span = {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T03:00:00Z"}
    await schedule_not_found(w, "POST", "/backfill", json=span)


async def schedule_fires(w: World) -> None:
    await schedule_not_found(w, "GET", "/fires")


async def workflow_not_found(w: World, method: str, suffix: str = "") -> None:
    """Acme's workflow answers 404 with the very body a never-made id gets."""
    missing = new_id(time.time())
    for role in ("admin", "submit"):
        theirs = await w.http.request(method, f"/api/v1/workflows/{w.workflow}{suffix}",
                                      headers=w.bravo[role])
        nobody = await w.http.request(method, f"/api/v1/workflows/{missing}{suffix}",
                                      headers=w.bravo[role])
        assert theirs.status_code == nobody.status_code == 404, theirs.text
        assert theirs.text.replace(w.workflow, "ID") == nobody.text.replace(missing, "ID")


async def create_workflow(w: World) -> None:
    own = {"name": "acme-flow", "tasks": {"a": {"task_type": "echo"}}}
    mine = await w.http.post("/api/v1/workflows", json=own, headers=w.bravo["submit"])
    assert mine.status_code == 201, mine.text
    clean(w, mine)
    theirs = {"name": "x", "tasks": {"a": {"task_type": "echo", "depends_on": [w.pending]}}}
    refused = await w.http.post("/api/v1/workflows", json=theirs, headers=w.bravo["submit"])
    assert refused.status_code == 422
    named = await w.http.post("/api/v1/workflows?tenant=acme", json=own,
                              headers=w.bravo["admin"])
    assert named.status_code == 403


async def list_workflows(w: World) -> None:
    for query in ("", "?name=acme-flow"):
        listed = await get_clean(w, f"/api/v1/workflows{query}", "read")
        assert listed.json()["workflows"] == []


async def get_workflow(w: World) -> None:
    await workflow_not_found(w, "GET")


async def cancel_workflow(w: World) -> None:
    await workflow_not_found(w, "POST", "/cancel")


async def retry_workflow(w: World) -> None:
    await workflow_not_found(w, "POST", "/retry")


async def metrics(w: World) -> None:
    refused = await w.http.get("/metrics", headers=w.bravo["read"])
    assert refused.status_code == 403  # the process's counters span every tenant


CSRF = "t" * 43  # any token: the console compares the form's with the cookie's


def console_headers(w: World, role: str) -> dict[str, str]:
    """Bravo in a browser: its key in the console's cookie, with a CSRF cookie."""
    token = w.bravo[role]["Authorization"].removeprefix("Bearer ")
    return {"Cookie": f"conveyor_key={token}; conveyor_csrf={CSRF}"}


async def console_get(w: World, path: str, role: str = "read") -> httpx.Response:
    response = await w.http.get(path, headers=console_headers(w, role))
    assert response.status_code == 200, (path, response.text)
    clean(w, response)
    return response


async def console_not_found(
    w: World, method: str, template: str, theirs_id: str | None = None,
) -> None:
    """Acme's task (or ``theirs_id``) answers the console's 404 page, the very page of a
    never-made id."""
    missing, own = new_id(time.time()), theirs_id or w.pending
    for role in ("admin", "read"):
        kw: dict[str, object] = {"headers": console_headers(w, role)}
        if method == "POST":
            kw["data"] = {"csrf_token": CSRF, "priority": "high"}
        theirs = await w.http.request(method, template.format(id=own), **kw)  # type: ignore[arg-type]
        nobody = await w.http.request(method, template.format(id=missing), **kw)  # type: ignore[arg-type]
        wanted = 404 if role == "admin" or method == "GET" else 403  # a read key may not act
        assert theirs.status_code == nobody.status_code == wanted, (template, theirs.text)
        assert theirs.text.replace(own, "ID") == nobody.text.replace(missing, "ID")


async def console_overview(w: World) -> None:
    page = await console_get(w, "/ui")
    assert 'data-state="PENDING">0<' in page.text  # acme's pending task is not counted


async def console_live(w: World) -> None:
    live = await console_get(w, "/ui/overview/live")
    assert 'data-priority="normal">0<' in live.text


async def console_tasks(w: World) -> None:
    for query in ("", "?type=echo", "?status=PENDING", "?status=CANCELLED"):
        page = await console_get(w, f"/ui/tasks{query}")
        assert "No task matches." in page.text
    await console_not_found(w, "GET", "/ui/tasks?id={id}")


async def console_task(w: World) -> None:
    await console_not_found(w, "GET", "/ui/tasks/{id}")


async def console_panel(w: World) -> None:
    await console_not_found(w, "GET", "/ui/tasks/{id}/panel")


async def console_cancel(w: World) -> None:
    await console_not_found(w, "POST", "/ui/tasks/{id}/cancel")


async def console_retry(w: World) -> None:
    await console_not_found(w, "POST", "/ui/tasks/{id}/retry")


async def console_priority(w: World) -> None:
    await console_not_found(w, "POST", "/ui/tasks/{id}/priority")


async def console_bulk(w: World) -> None:
    """Acme's tasks are neither counted nor touched by bravo's bulk actions."""
    for verb in ("cancel", "retry"):
        ask = await console_get(w, f"/ui/tasks/bulk?verb={verb}", "admin")
        assert "of the 0 matching" in ask.text
        done = await w.http.post("/ui/tasks/bulk", data={"csrf_token": CSRF, "verb": verb},
                                 headers=console_headers(w, "admin"))
        assert done.status_code == 200 and "<strong>0</strong> task(s)" in done.text
        clean(w, done)


async def console_selected(w: World) -> None:
    body = {"csrf_token": CSRF, "verb": "cancel", "id": w.pending}
    done = await w.http.post("/ui/tasks/selected", data=body,
                             headers=console_headers(w, "admin"))
    assert done.status_code == 200 and "0</strong> task(s) cancelled, 1 skipped" in done.text
    clean(w, done, w.pending)


async def console_queues(w: World) -> None:
    page = await console_get(w, "/ui/queues")
    assert 'data-queue="normal"><th>normal</th><td>0<' in page.text


async def console_pause(w: World) -> None:
    for verb in ("pause", "resume"):
        refused = await w.http.post(f"/ui/queues/low/{verb}", data={"csrf_token": CSRF},
                                    headers=console_headers(w, "admin"))
        assert refused.status_code == 403  # every tenant's queues: not a tenant admin's
        clean(w, refused)


async def console_workers(w: World) -> None:
    page = await console_get(w, "/ui/workers")
    assert "w-1" in page.text  # the shared fleet, without acme's type (``clean``)
    assert 'data-action="Drain"' not in (await console_get(w, "/ui/workers", "admin")).text


async def console_drain(w: World) -> None:
    refused = await w.http.post("/ui/workers/w-1/drain", data={"csrf_token": CSRF},
                                headers=console_headers(w, "admin"))
    assert refused.status_code == 403  # every tenant's worker: not a tenant admin's to drain
    clean(w, refused)
    assert await w.parts.coordination.registry.drain_requested("w-1") is None


async def console_workflows(w: World) -> None:
    for query in ("", "?state=RUNNING", "?name=acme-flow"):
        page = await console_get(w, f"/ui/workflows{query}")
        assert "No workflow matches." in page.text


async def console_workflow(w: World) -> None:
    await console_not_found(w, "GET", "/ui/workflows/{id}", w.workflow)


async def console_workflow_cancel(w: World) -> None:
    await console_not_found(w, "POST", "/ui/workflows/{id}/cancel", w.workflow)


async def console_workflow_retry(w: World) -> None:
    await console_not_found(w, "POST", "/ui/workflows/{id}/retry", w.workflow)


async def console_config(w: World) -> None:
    """Acme's config answers 404 with the page of a never-made type, to read or to save."""
    for method in ("GET", "POST"):
        kw: dict[str, object] = {"headers": console_headers(w, "admin")}
        if method == "POST":
            kw["data"] = {"csrf_token": CSRF, "timeout_seconds": "1"}
        theirs = await w.http.request(method, f"/ui/configs/{SECRET_TYPE}", **kw)  # type: ignore[arg-type]
        nobody = await w.http.request(method, "/ui/configs/never_made", **kw)  # type: ignore[arg-type]
        assert theirs.status_code == nobody.status_code == 404, theirs.text
        assert theirs.text.replace(SECRET_TYPE, "T") == nobody.text.replace("never_made", "T")


async def console_drift(w: World) -> None:
    page = await console_get(w, "/ui/drift", "admin")
    assert "<strong>0</strong>" in page.text


async def console_schedules(w: World) -> None:
    page = await console_get(w, "/ui/schedules")
    assert "No schedules" in page.text


async def public(w: World) -> None:
    """Routes that hold no tenant's data: health, the OpenAPI document and the docs pages."""


ROUTES: dict[tuple[str, str], Check] = {
    ("POST", "/api/v1/tasks"): create_task,
    ("POST", "/api/v1/tasks/batch"): create_batch,
    ("GET", "/api/v1/tasks"): list_tasks,
    ("GET", "/api/v1/tasks/{task_id}"): get_task,
    ("PATCH", "/api/v1/tasks/{task_id}"): patch_task,
    ("POST", "/api/v1/tasks/{task_id}/cancel"): cancel_task,
    ("POST", "/api/v1/tasks/{task_id}/retry"): retry_task,
    ("GET", "/api/v1/tasks/{task_id}/logs"): task_logs,
    ("GET", "/api/v1/task-configs"): list_configs,
    ("GET", "/api/v1/task-configs/{task_type}"): get_config,
    ("PUT", "/api/v1/task-configs/{task_type}"): put_config,
    ("DELETE", "/api/v1/task-configs/{task_type}"): delete_config,
    ("GET", "/api/v1/workers"): workers,
    ("GET", "/api/v1/workers/history"): worker_history,
    ("POST", "/api/v1/workers/{worker_id}/drain"): drain_worker,
    ("GET", "/api/v1/queues"): queues,
    ("GET", "/api/v1/scheduler"): scheduler,
    ("GET", "/api/v1/stats"): stats,
    ("POST", "/api/v1/queues/{name}/pause"): pause,
    ("POST", "/api/v1/queues/{name}/resume"): resume,
    ("GET", "/api/v1/keys"): list_keys,
    ("POST", "/api/v1/keys"): create_key,
    ("DELETE", "/api/v1/keys/{key_id}"): revoke_key,
    ("GET", "/api/v1/audit"): audit,
    ("GET", "/api/v1/schedules"): list_schedules,
    ("PUT", "/api/v1/schedules/{name}"): put_schedule,
    ("GET", "/api/v1/schedules/{name}"): get_schedule,
    ("DELETE", "/api/v1/schedules/{name}"): delete_schedule,
    ("POST", "/api/v1/schedules/{name}/pause"): pause_schedule,
    ("POST", "/api/v1/schedules/{name}/resume"): resume_schedule,
    ("POST", "/api/v1/schedules/{name}/trigger"): trigger_schedule,
    ("POST", "/api/v1/schedules/{name}/backfill"): backfill_schedule,
    ("GET", "/api/v1/schedules/{name}/fires"): schedule_fires,
    ("POST", "/api/v1/workflows"): create_workflow,
    ("GET", "/api/v1/workflows"): list_workflows,
    ("GET", "/api/v1/workflows/{workflow_id}"): get_workflow,
    ("POST", "/api/v1/workflows/{workflow_id}/cancel"): cancel_workflow,
    ("POST", "/api/v1/workflows/{workflow_id}/retry"): retry_workflow,
    ("GET", "/metrics"): metrics,
    ("GET", "/healthz"): public,
    ("GET", "/readyz"): public,
    ("GET", "/openapi.json"): public,
    ("GET", "/docs"): public,
    ("GET", "/redoc"): public,
    ("MOUNT", "/static/docs"): public,
    ("GET", "/"): public,
    ("GET", "/ui"): console_overview,
    ("GET", "/ui/overview/live"): console_live,
    ("GET", "/ui/tasks"): console_tasks,
    ("GET", "/ui/tasks/bulk"): console_bulk,
    ("POST", "/ui/tasks/bulk"): console_bulk,
    ("POST", "/ui/tasks/selected"): console_selected,
    ("GET", "/ui/tasks/{task_id}"): console_task,
    ("GET", "/ui/tasks/{task_id}/panel"): console_panel,
    ("POST", "/ui/tasks/{task_id}/cancel"): console_cancel,
    ("POST", "/ui/tasks/{task_id}/retry"): console_retry,
    ("POST", "/ui/tasks/{task_id}/priority"): console_priority,
    ("GET", "/ui/queues"): console_queues,
    ("POST", "/ui/queues/{name}/pause"): console_pause,
    ("POST", "/ui/queues/{name}/resume"): console_pause,
    ("GET", "/ui/workers"): console_workers,
    ("POST", "/ui/workers/{worker_id}/drain"): console_drain,
    ("GET", "/ui/workflows"): console_workflows,
    ("GET", "/ui/workflows/{workflow_id}"): console_workflow,
    ("POST", "/ui/workflows/{workflow_id}/cancel"): console_workflow_cancel,
    ("POST", "/ui/workflows/{workflow_id}/retry"): console_workflow_retry,
    ("GET", "/ui/schedules"): console_schedules,
    ("GET", "/ui/drift"): console_drift,
    ("GET", "/ui/configs/{task_type}"): console_config,
    ("POST", "/ui/configs/{task_type}"): console_config,
    ("GET", "/ui/login"): public,
    ("POST", "/ui/login"): public,
    ("POST", "/ui/logout"): public,
    ("MOUNT", "/ui/static"): public,
}


def served(parts: Components) -> set[tuple[str, str]]:
    """Every (method, path) the app answers, mounts as ("MOUNT", path): the routes of the
    OpenAPI document (FastAPI includes routers lazily, so ``app.routes`` does not list them)
    plus the app's own routes outside it (docs pages, health, ``/metrics``)."""
    app = create_app(parts.service, auth_required=True, metrics=parts.metrics)
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items() for method in operations
    }
    return found | set(_walk(app.routes))


def _walk(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    """The routes outside the OpenAPI document, also those of routers included with
    ``include_in_schema=False`` (the console's pages), which FastAPI keeps in a wrapper."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _walk(inner.routes, prefix + route.include_context.prefix)  # type: ignore[attr-defined]
        elif isinstance(route, Mount):
            yield "MOUNT", prefix + route.path
        elif isinstance(route, APIRoute | Route):
            yield from ((m, prefix + route.path) for m in route.methods or () if m != "HEAD")


async def test_every_route_has_a_tenant_check(parts: Components) -> None:
    missing = served(parts) - set(ROUTES)
    assert not missing, f"routes without a tenant isolation check in ROUTES: {sorted(missing)}"
    assert not set(ROUTES) - served(parts), "ROUTES names routes the app no longer serves"


@pytest.mark.parametrize("route", sorted(ROUTES), ids=lambda r: f"{r[0]} {r[1]}")
async def test_another_tenant_cannot_reach_acme(world: World, route: tuple[str, str]) -> None:
    before = await _acme_state(world)
    await ROUTES[route](world)
    assert await _acme_state(world) == before


async def _acme_state(w: World) -> object:
    """Everything of acme's a call could change."""
    store = w.parts.store
    tasks = await store.tasks.get_many([w.pending, w.cancelled])
    config = await store.configs.get_config(SECRET_TYPE, "acme")
    keys = await store.keys.list_keys("acme")
    paused = await w.parts.coordination.queues.paused()
    schedule = await store.schedules.get("acme", SECRET_SCHEDULE)
    fires = await store.schedules.fires("acme", SECRET_SCHEDULE, 10)
    flow = await store.workflows.node_states(w.workflow)
    return ([(t.id, t.status, t.priority, t.version) for t in tasks], config, keys, paused,
            schedule, fires, flow)


async def test_acme_sees_its_own(world: World) -> None:
    w = world
    mine = await w.http.get(f"/api/v1/tasks/{w.pending}", headers=w.acme["read"])
    assert mine.status_code == 200 and mine.json()["tenant"] == "acme"
    again = await w.http.post("/api/v1/tasks", headers=w.acme["submit"],
                              json={"task_type": "echo", "idempotency_key": SECRET_KEY})
    assert again.status_code == 200 and again.json()["task_id"] == w.pending
    stats = (await w.http.get("/api/v1/stats", headers=w.acme["read"])).json()
    assert stats["by_type"][SECRET_TYPE] == {"CANCELLED": 1}
    history = (await w.http.get("/api/v1/workers/history", headers=w.acme["read"])).json()
    assert history["workers"][0]["types"] == [SECRET_TYPE, "echo"]
    queues = (await w.http.get("/api/v1/queues", headers=w.acme["read"])).json()
    assert queues["lengths"]["normal"] == 1


async def test_a_superadmin_spans_tenants(world: World) -> None:
    w, su = world, world.superadmin
    await w.http.post("/api/v1/tasks", json={"task_type": "echo"}, headers=w.bravo["submit"])
    listed = (await w.http.get("/api/v1/tasks", headers=su)).json()["tasks"]
    assert {t["tenant"] for t in listed} == {"acme", "bravo"}
    narrowed = (await w.http.get("/api/v1/tasks?tenant=acme", headers=su)).json()["tasks"]
    assert {t["task_id"] for t in narrowed} == {w.pending, w.cancelled, *w.workflow_tasks}
    assert (await w.http.get(f"/api/v1/tasks/{w.pending}", headers=su)).status_code == 200
    stats = (await w.http.get("/api/v1/stats", headers=su)).json()
    assert stats["by_status"] == {"PENDING": 3, "WAITING": 1, "CANCELLED": 1}
    configs = (await w.http.get("/api/v1/task-configs", headers=su)).json()["configs"]
    assert [c["tenant"] for c in configs] == ["acme"]
    keys = (await w.http.get("/api/v1/keys", headers=su)).json()["keys"]
    assert {k["tenant"] for k in keys} == {"acme", "bravo", "default"}
    made = await w.http.post("/api/v1/tasks?tenant=acme", json={"task_type": SECRET_TYPE},
                             headers=su)
    assert made.status_code == 201 and made.json()["tenant"] == "acme"
    bad = await w.http.get("/api/v1/tasks?tenant=Not_Valid", headers=su)
    assert bad.status_code == 422
    assert (await w.http.post("/api/v1/queues/low/pause", headers=su)).status_code == 200
    assert (await w.http.get("/metrics", headers=su)).status_code == 200


async def test_auth_off_spans_tenants_and_creates_in_default(world: World) -> None:
    app = create_app(world.parts.service, auth_required=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as h:
        made = await h.post("/api/v1/tasks", json={"task_type": "echo"})
        assert made.json()["tenant"] == "default"
        assert (await h.get(f"/api/v1/tasks/{world.pending}")).status_code == 200
        superadmin = await h.post("/api/v1/keys", json={"scope": "superadmin"})
        assert superadmin.status_code == 422
