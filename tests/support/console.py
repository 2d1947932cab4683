"""The console through the real app, as a browser drives it: the login, a page's CSRF token,
forms posted with it; the ``console`` (key required) and ``open_console`` (standalone on
loopback) fixtures."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.apikeys import Scope, new_key
from conveyor.bootstrap import Components
from conveyor.service import TaskRequest

EVIL = "<script>alert('x')</script>"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
PAGES = ["/ui", "/ui/overview/live", "/ui/tasks", "/ui/queues", "/ui/workers", "/ui/schedules",
         "/ui/drift"]


@dataclass
class Console:
    parts: Components
    http: httpx.AsyncClient

    async def login(self, scope: Scope, tenant: str = "default") -> str:
        key, token = new_key(scope, scope.label, time.time(), tenant)
        await self.parts.store.keys.put_key(key)
        form = await self.http.get("/ui/login")
        assert form.status_code == 200, form.text
        done = await self.http.post("/ui/login", data={"key": token, **self.csrf(form)})
        assert done.status_code == 303 and done.headers["location"] == "/ui", done.text
        return token

    @staticmethod
    def csrf(page: httpx.Response) -> dict[str, str]:
        found = TOKEN.search(page.text)
        assert found, page.text
        return {"csrf_token": found.group(1)}

    async def post(self, path: str, page: str = "/ui/tasks", **data: str) -> httpx.Response:
        """Submit a form as the browser would: with the token of a page it just loaded."""
        token = self.csrf(await self.http.get(page))
        return await self.http.post(path, data={**token, **data})

    async def task(self, **body: object) -> str:
        [made] = await self.parts.service.submit([TaskRequest("echo", **body)])  # type: ignore[arg-type]
        return made.task.id


def app_client(parts: Components, auth: bool) -> httpx.AsyncClient:
    app = create_app(parts.service, auth_required=auth)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t")


@pytest.fixture
async def open_console(parts: Components) -> AsyncIterator[Console]:
    """Standalone on loopback: no key needed."""
    async with app_client(parts, False) as http:
        yield Console(parts, http)


@pytest.fixture
async def console(parts: Components) -> AsyncIterator[Console]:
    async with app_client(parts, True) as http:
        yield Console(parts, http)


