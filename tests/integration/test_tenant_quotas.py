"""Per-tenant quotas on create (issue 12): past ``max_pending`` or ``creates_per_second`` a
create, single or batch, is answered 429 with ``Retry-After`` and a body naming the quota, and
nothing is written. Through the real app over ASGI, on both coordination backends (the token
bucket lives in coordination)."""

from __future__ import annotations

import httpx

from conveyor.api.app import create_app
from conveyor.bootstrap import Components
from conveyor.client.wire import ApiError, read
from conveyor.models import TaskStatus, TenantLimits
from conveyor.tenants import DEFAULT_TENANT

ECHO = {"task_type": "echo", "payload": {"x": 1}}


def _client(parts: Components) -> httpx.AsyncClient:
    app = create_app(parts.service, auth_required=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


async def _pending(parts: Components) -> int:
    counts = await parts.store.stats.count_by_status()
    return sum(n for (_, status), n in counts.items() if status == TaskStatus.PENDING)


def _refused(response: httpx.Response, quota: str) -> str:
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) >= 1
    body = response.json()["error"]
    assert body["code"] == "quota" and quota in body["message"]
    return str(body["message"])


async def test_max_pending_refuses_singles_and_batches_past_it(both: Components) -> None:
    # The caller here is anonymous, so of the default tenant (tenancy gives keys their own).
    await both.store.tenant_limits.put_limits(TenantLimits(DEFAULT_TENANT, max_pending=3))
    async with _client(both) as http:
        for _ in range(2):
            assert (await http.post("/api/v1/tasks", json=ECHO)).status_code == 201
        batch = {"tasks": [ECHO, ECHO]}
        message = _refused(await http.post("/api/v1/tasks/batch", json=batch), "max_pending")
        assert "2 pending" in message
        assert (await http.post("/api/v1/tasks", json=ECHO)).status_code == 201
        _refused(await http.post("/api/v1/tasks", json=ECHO), "max_pending")
    assert await _pending(both) == 3


async def test_creates_per_second_is_a_token_bucket(both: Components) -> None:
    await both.store.tenant_limits.put_limits(
        TenantLimits(DEFAULT_TENANT, creates_per_second=2.0)
    )
    async with _client(both) as http:
        assert (await http.post("/api/v1/tasks/batch", json={"tasks": [ECHO, ECHO]})
                ).status_code == 201
        refused = await http.post("/api/v1/tasks", json=ECHO)
        _refused(refused, "creates_per_second")
        too_big = await http.post("/api/v1/tasks/batch", json={"tasks": [ECHO] * 3})
        assert "smaller batches" in _refused(too_big, "creates_per_second")
    assert sum((await both.store.stats.count_by_status()).values()) == 2
    # The client carries the wait: ``ApiError.retry_after``, also in its text.
    try:
        read(refused)
    except ApiError as exc:
        assert exc.status == 429 and exc.retry_after == 1
        assert str(exc).endswith("(retry after 1 s)")
    else:
        raise AssertionError("a 429 must raise")


async def test_a_tenant_without_limits_is_not_held(both: Components) -> None:
    await both.store.tenant_limits.put_limits(TenantLimits("other", max_pending=0))
    async with _client(both) as http:
        assert (await http.post("/api/v1/tasks/batch", json={"tasks": [ECHO] * 20})
                ).status_code == 201
