"""Task-config secrets end to end: sealed in the database, masked by the API, kept by a PUT of
``"***"``, opened only by the worker, rotated by ``conveyor secrets rotate``, and absent from
logs, events, webhooks and error texts. Real databases, a real HTTP service that checks the
``Authorization`` header, the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet, MultiFernet
from sqlalchemy.ext.asyncio import create_async_engine

from conveyor.config import Settings
from conveyor.errors import ConfigError, RetryableError
from conveyor.events import Event
from conveyor.executors.http import HttpExecutor
from conveyor.executors.unsealing import Unsealing
from conveyor.keyring import Keyring
from conveyor.sealing import seal
from conveyor.store.urls import database_url
from tests.integration.test_api import Api, error_of, running, serve
from tests.support.asgi import Message, Receive, Send, read_body, serving
from tests.support.databases import BACKENDS, fresh_database
from tests.support.executors import running_task
from tests.support.processes import conveyor_command

TOKEN = "s3cr3t-7f3a9c"
BEARER = f"Bearer {TOKEN}"
K1, K2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@dataclass
class Business:
    """``/auth`` answers only ``Authorization: Bearer <TOKEN>`` and, refusing, echoes the header
    it got (as careless services do); ``/hook`` records webhook deliveries."""

    base: str = ""
    hooks: list[bytes] = field(default_factory=list)

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        if scope["path"] == "/hook":
            self.hooks.append(body)
            status, reply = 200, {}
        elif headers.get("authorization") == BEARER and scope["path"] == "/auth":
            status, reply = 200, {"success": True, "data": {"authenticated": True}}
        else:
            status, reply = 401, {"error": f"refused {headers.get('authorization')!r}"}
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": json.dumps(reply).encode()})


@pytest.fixture
async def business() -> AsyncIterator[Business]:
    app = Business()
    async with serving(app) as base:
        app.base = base
        yield app


def flags(*keys: str) -> dict[str, Any]:
    return {"http_executor": {"allowed_hosts": ["127.0.0.1"]},
            "secrets": {"keys": list(keys)}}


def http_config(url: str, authorization: str = BEARER) -> dict[str, Any]:
    return {"executor": "http", "max_retries": 0,
            "executor_config": {"url": url, "headers": {"Authorization": authorization,
                                                        "X-Trace": "on"}}}


async def stored_text(url: str) -> str:
    """Every row of the task configs and tasks, read with SQL past Conveyor."""
    engine = create_async_engine(database_url(url))
    try:
        async with engine.connect() as conn:
            rows = [row for table in ("task_config", "task", "task_logs", "audit_log")
                    for row in (await conn.execute(sa.text(f"SELECT * FROM {table}"))).all()]
    finally:
        await engine.dispose()
    return "\n".join(repr(tuple(row)) for row in rows)


async def run_one(api: Api, task_type: str, **body: Any) -> dict[str, Any]:
    async with running(api):
        task = await api.created(task_type=task_type, **body)
        return await api.wait_final(task["task_id"])


def cli(*args: str, keys: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    if keys is not None:
        env["CONVEYOR_SECRETS__KEYS"] = keys
    return subprocess.run([conveyor_command(), *args], capture_output=True, text=True,
                          timeout=60, env=env, check=False)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_database_holds_no_plaintext_and_the_api_shows_stars(
    backend: str, tmp_path: Path
) -> None:
    async with fresh_database(backend, tmp_path) as url, serve(url, **flags(K1)) as api:
        put = await api.http.put("/api/v1/task-configs/call", json=http_config("http://svc/a"))
        assert put.status_code == 200, put.text
        assert put.json()["executor_config"]["headers"] == {"Authorization": "***",
                                                            "X-Trace": "***"}
        got = (await api.http.get("/api/v1/task-configs/call")).json()
        assert got["executor_config"] == {"url": "http://svc/a",
                                          "headers": {"Authorization": "***", "X-Trace": "***"}}
        listed = (await api.http.get("/api/v1/task-configs")).json()["configs"]
        assert listed[0]["executor_config"]["headers"]["Authorization"] == "***"
        text = await stored_text(url)
        assert TOKEN not in text
        assert "$sealed" in text

        got["executor_config"]["url"] = "http://svc/b"  # GET, edit one field, PUT back
        body = {k: v for k, v in got.items() if k not in ("task_type", "updated_at")}
        again = await api.http.put("/api/v1/task-configs/call", json=body)
        assert again.status_code == 200, again.text
        stored = await api.parts.store.configs.get_config("call")
        assert stored is not None
        assert stored.executor_config["url"] == "http://svc/b"
        token = stored.executor_config["headers"]["Authorization"]["$sealed"]
        assert json.loads(Fernet(K1).decrypt(token.encode())) == BEARER
        assert TOKEN not in await stored_text(url)
        audit = (await api.http.get("/api/v1/audit", params={"target": "call"})).json()
        assert len(audit["entries"]) == 2
        for entry in audit["entries"]:
            assert entry["after"]["executor_config"]["headers"]["Authorization"] == "***"
        assert "$sealed" not in json.dumps(audit)


async def test_a_mask_where_nothing_is_stored_is_refused(tmp_path: Path) -> None:
    async with serve(str(tmp_path / "c.db"), **flags(K1)) as api:
        body = http_config("http://svc/a", authorization="***")
        message = error_of(await api.http.put("/api/v1/task-configs/t", json=body), 422)
        assert "executor_config.headers.Authorization" in message


async def test_a_server_database_without_keys_refuses_secrets(tmp_path: Path) -> None:
    async with fresh_database("postgres", tmp_path) as url, serve(url, **flags()) as api:
        body = http_config("http://svc/a")
        message = error_of(await api.http.put("/api/v1/task-configs/t", json=body), 422)
        assert "secrets.keys" in message
        assert "generate-key" in message
        plain = {"executor": "http", "executor_config": {"url": "http://svc/a"}}
        assert (await api.http.put("/api/v1/task-configs/t", json=plain)).status_code == 200


async def test_a_password_in_the_url_is_refused(tmp_path: Path) -> None:
    async with serve(str(tmp_path / "c.db"), **flags(K1)) as api:
        body = {"executor": "http", "executor_config": {"url": "http://u:pw@svc/a"}}
        message = error_of(await api.http.put("/api/v1/task-configs/t", json=body), 422)
        assert "headers" in message
        assert "pw" not in message


async def test_standalone_makes_a_private_key_file_and_reuses_it(
    tmp_path: Path, business: Business
) -> None:
    db = tmp_path / "c.db"
    key_file = tmp_path / "c.db.key"
    async with serve(str(db), **flags()) as api:
        plain = {"executor": "http", "executor_config": {"url": f"{business.base}/auth"}}
        assert (await api.http.put("/api/v1/task-configs/t", json=plain)).status_code == 200
        assert not key_file.exists()  # made on first need only
        config = http_config(f"{business.base}/auth")
        assert (await api.http.put("/api/v1/task-configs/t", json=config)).status_code == 200
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text()
    assert TOKEN not in await stored_text(str(db))
    async with serve(str(db), **flags()) as api:  # a restart opens what the last one sealed
        final = await run_one(api, "t")
    assert final["status"] == "SUCCESS", final
    assert final["result"] == {"authenticated": True}
    assert key_file.read_text() == key


@pytest.mark.parametrize("backend", BACKENDS)
async def test_after_rotation_the_executor_still_authenticates(
    backend: str, tmp_path: Path, business: Business
) -> None:
    async with fresh_database(backend, tmp_path) as url:
        async with serve(url, **flags(K1)) as api:
            config = http_config(f"{business.base}/auth")
            assert (await api.http.put("/api/v1/task-configs/t", json=config)).status_code == 200
            assert (await run_one(api, "t"))["status"] == "SUCCESS"

        rotated = cli("secrets", "rotate", "--db", url, "--batch", "1", "--json",
                      keys=f"{K2},{K1}")
        assert rotated.returncode == 0, rotated.stderr
        report = json.loads(rotated.stdout)
        assert (report["configs"], report["rewritten"], report["rotated"]) == (1, 1, 2)
        rerun = json.loads(cli("secrets", "rotate", "--db", url, "--json",
                               keys=f"{K2},{K1}").stdout)
        assert (rerun["rewritten"], rerun["rotated"], rerun["current"]) == (0, 0, 2)
        assert TOKEN not in await stored_text(url)

        async with serve(url, **flags(K2)) as api:  # the old key removed
            final = await run_one(api, "t")
            assert final["status"] == "SUCCESS", final
            assert final["result"] == {"authenticated": True}
        async with serve(url, **flags(K1)) as api:  # only the old key: nothing opens
            final = await run_one(api, "t")
            assert final["status"] == "FAILED"
            assert "none of the keys in secrets.keys" in final["error"]
        refused = cli("secrets", "rotate", "--db", url, keys=K1)
        assert refused.returncode == 1
        assert "add back the key" in refused.stderr


async def test_no_plaintext_in_logs_events_webhooks_or_errors(
    tmp_path: Path, business: Business, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    db = str(tmp_path / "c.db")
    async with serve(db, **flags(K1)) as api:
        api.parts.events.add(type("Capture", (), {"notify": lambda _, e: events.append(e)})())
        config = http_config(f"{business.base}/echo")  # refused, echoing the header
        assert (await api.http.put("/api/v1/task-configs/t", json=config)).status_code == 200
        final = await run_one(api, "t", callback_url=f"{business.base}/hook")
        logs = (await api.http.get(f"/api/v1/tasks/{final['task_id']}/logs")).text
        for _ in range(100):
            if business.hooks:
                break
            await asyncio.sleep(0.05)
    assert final["status"] == "FAILED"
    assert "HTTP 401" in final["error"]
    assert "***" in final["error"]
    assert business.hooks
    seen = [final["error"], logs, caplog.text, repr(events), *(h.decode() for h in business.hooks),
            await stored_text(db)]
    for text in seen:
        assert TOKEN not in text


async def test_a_plug_in_declares_its_own_secret_fields(tmp_path: Path) -> None:
    db = str(tmp_path / "c.db")
    async with serve(db, **flags(K1)) as api:
        config = {"executor": "reverse", "executor_config": {"token": TOKEN, "upper": True}}
        put = await api.http.put("/api/v1/task-configs/rev", json=config)
        assert put.json()["executor_config"] == {"token": "***", "upper": True}
        assert TOKEN not in await stored_text(db)
        final = await run_one(api, "rev", payload={"text": "ab", "token": TOKEN})
    assert final["status"] == "SUCCESS", final  # the plug-in got the token opened
    assert final["result"]["reversed"] == "BA"


async def test_a_worker_without_the_keys_retries_rather_than_fails() -> None:
    sealed = seal({"url": "http://svc/a", "headers": {"Authorization": BEARER}}, ("headers.*",),
                  lambda: MultiFernet([Fernet(K1)]))
    executor = Unsealing("http", HttpExecutor(Settings()), Keyring())
    with pytest.raises(RetryableError, match=r"secrets\.keys"):
        await executor.execute(running_task("01SECRET", "t"), sealed)
    await executor.close()


@pytest.mark.parametrize(("mode", "text", "match"), [
    (0o644, K1, "chmod 600"),
    (0o600, "not a key", "does not hold a Fernet key"),
])
async def test_a_key_file_it_cannot_use_stops_the_process_at_start(
    tmp_path: Path, mode: int, text: str, match: str
) -> None:
    key_file = tmp_path / "c.db.key"
    key_file.write_text(text)
    key_file.chmod(mode)
    with pytest.raises(ConfigError, match=match):
        async with serve(str(tmp_path / "c.db"), **flags()):
            pass


def test_a_bad_key_stops_the_process_at_start_without_printing_it(tmp_path: Path) -> None:
    bad = "not-a-fernet-key-but-private"
    started = cli("standalone", "--db", str(tmp_path / "c.db"), "--port", "0", keys=bad)
    assert started.returncode == 2
    assert "secrets.keys" in started.stderr
    assert "generate-key" in started.stderr
    assert bad not in started.stderr + started.stdout


def test_config_show_masks_the_keys_and_generate_key_makes_one() -> None:
    made = cli("secrets", "generate-key")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    Fernet(key)  # a valid key
    shown = cli("config", "show", "--json", keys=key)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["secrets.keys"]["value"] == "***"
    assert key not in shown.stdout
