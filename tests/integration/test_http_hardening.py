"""The API's HTTP server against hostile clients, over real sockets to a real uvicorn.

Each test runs the API role of a ``Process`` in this event loop on a free port (SQLite store,
in-process coordination) and talks to it with raw asyncio sockets, so every byte the client
sends or withholds is under the test's control: a DNS-rebinding ``Host``, a cross-site
``Origin``, a ``text/plain`` body, a key-less 14 MB body, a body or headers that never finish.
Every read is bounded by a timeout and every server is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from conveyor.apikeys import Scope, new_key
from conveyor.bootstrap import Components, build
from conveyor.config import load_settings
from conveyor.process import Process
from tests.support.processes import free_port

MB = 1_048_576


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool  # the server closed the connection after answering

    def error(self) -> dict[str, str]:
        data: dict[str, str] = json.loads(self.body)["error"]
        return data


@dataclass
class Server:
    parts: Components
    port: int

    async def token(self, scope: Scope) -> str:
        key, token = new_key(scope, scope.label, time.time())
        await self.parts.store.keys.put_key(key)
        return token

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)

    async def unfinished(self, sent: bytes, timeout: float = 5.0) -> tuple[Answer, float]:
        """Send ``sent`` on a fresh connection and nothing more: the answer, and how long it
        took to come."""
        reader, writer = await self.connect()
        try:
            began = time.monotonic()
            writer.write(sent)
            await writer.drain()
            return await read_answer(reader, timeout), time.monotonic() - began
        finally:
            writer.close()

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None,
        body: bytes = b"", timeout: float = 5.0,
    ) -> Answer:
        """One request on its own connection, which the client asks to close after it."""
        reader, writer = await self.connect()
        try:
            fields = {"connection": "close", **(headers or {})}
            writer.write(head(method, path, self.port, fields, len(body)) + body)
            await writer.drain()
            return await read_answer(reader, timeout)
        finally:
            writer.close()


def head(
    method: str, path: str, port: int, headers: dict[str, str] | None, length: int | None
) -> bytes:
    """A request's head; ``Host`` is the server's address unless ``headers`` says otherwise."""
    fields = {"host": f"127.0.0.1:{port}"}
    if length is not None and (length or method != "GET"):
        fields["content-length"] = str(length)
    fields.update({k.lower(): v for k, v in (headers or {}).items()})
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_answer(
    reader: asyncio.StreamReader, timeout: float, *, kept_open: bool = False
) -> Answer:
    """One answer; then, unless ``kept_open``, whether the server closed the connection."""
    async with asyncio.timeout(timeout):
        status_line = await reader.readline()
        assert status_line, "the server closed the connection without answering"
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        closed = not kept_open and await reader.read(1) == b""
    return Answer(int(status_line.split()[1]), headers, body, closed)


@asynccontextmanager
async def serving(tmp_path: Path, **flags: Any) -> AsyncIterator[Server]:
    port = free_port()
    settings = load_settings(database_url=str(tmp_path / "c.db"), port=port, **flags)
    parts = await build(settings, standalone=True)
    process = Process(settings, api=True, scheduler=False, worker=False, standalone=True,
                      parts=parts)
    try:
        await process.start()
        yield Server(parts, port)
    finally:
        await process.stop()
        await parts.close()


ECHO = json.dumps({"task_type": "echo", "payload": {"x": 1}}).encode()
PAUSE = "/api/v1/queues/normal/pause"


async def test_dns_rebinding_host_is_refused(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        rebound = await server.request(
            "GET", "/api/v1/tasks", headers={"Host": f"rebind.evil.example:{server.port}"})
        assert rebound.status == 421
        assert "server.allowed_hosts" in rebound.error()["message"]
        probe = await server.request(  # a load balancer's health check by instance address
            "GET", "/healthz", headers={"Host": f"10.0.0.5:{server.port}"})
        assert probe.status == 200
        for name in ("127.0.0.1", "localhost", "[::1]"):
            ok = await server.request(
                "GET", "/api/v1/tasks", headers={"Host": f"{name}:{server.port}"})
            assert ok.status == 200, (name, ok.body)


async def test_allowed_hosts_setting_names_a_public_host(tmp_path: Path) -> None:
    async with serving(tmp_path, server={"allowed_hosts": "conveyor.example.com"}) as server:
        public = await server.request(
            "GET", "/api/v1/tasks", headers={"Host": "conveyor.example.com"})
        assert public.status == 200
        assert (await server.request("GET", "/api/v1/tasks")).status == 421  # only the list


async def test_cross_site_simple_requests_are_refused(tmp_path: Path) -> None:
    async with serving(tmp_path) as server:
        # What a page at evil.example can send without a CORS preflight.
        cross = await server.request("POST", PAUSE, body=b"x", headers={
            "Origin": "http://evil.example", "Content-Type": "text/plain"})
        assert cross.status == 403 and cross.error()["code"] == "cross_origin"
        plain = await server.request(
            "POST", PAUSE, body=b"x", headers={"Content-Type": "text/plain"})
        assert plain.status == 415
        assert "application/json" in plain.error()["message"]
        form = await server.request("POST", "/api/v1/tasks", body=b"a=1", headers={
            "Content-Type": "application/x-www-form-urlencoded"})
        assert form.status == 415
        queues = json.loads((await server.request("GET", "/api/v1/queues")).body)
        assert queues["paused"] == [], queues
        # The server's own origin, and JSON, still work.
        own = await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Origin": f"http://127.0.0.1:{server.port}", "Content-Type": "application/json"})
        assert own.status == 201, own.body
        bare = await server.request("POST", PAUSE)  # no body, no type: curl -X POST
        assert bare.status == 200, bare.body
        assert (await server.request("POST", "/api/v1/queues/normal/resume")).status == 200


async def test_allowed_origins_setting_admits_a_console(tmp_path: Path) -> None:
    origin = "https://console.example.com"
    async with serving(tmp_path, server={"allowed_origins": origin}) as server:
        allowed = await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Origin": origin, "Content-Type": "application/json"})
        assert allowed.status == 201, allowed.body
        other = await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Origin": "https://console.example.org", "Content-Type": "application/json"})
        assert other.status == 403


async def test_a_keyless_huge_body_is_refused_before_it_is_read(tmp_path: Path) -> None:
    """The 401 arrives while 14 MB of the body are still unsent: nothing read or parsed."""
    async with serving(tmp_path, auth_required=True) as server:
        answer, elapsed = await server.unfinished(head(
            "POST", "/api/v1/tasks", server.port, {"Content-Type": "application/json"}, 14 * MB,
        ) + b'{"task_type":', timeout=3.0)
        assert answer.status == 401 and answer.closed
        assert elapsed < 1.0, elapsed
        # A wrong or revoked key is refused the same way; a valid one gets its body read.
        token = await server.token(Scope.SUBMIT)
        key_id = token.split("_")[1]
        wrong = await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer cvk_{key_id}_nope"})
        assert wrong.status == 401
        good = await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        assert good.status == 201, good.body
        assert await server.parts.store.keys.revoke_key(key_id, time.time())
        revoked = await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Content-Type": "application/json", "Authorization": f"Bearer {token}"})
        assert revoked.status == 401 and "revoked" in revoked.error()["message"]
        assert (await server.request("GET", "/healthz")).status == 200  # still public


async def test_metrics_need_a_read_key_unless_scraped_from_a_listed_address(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, auth_required=True) as server:
        assert (await server.request("GET", "/metrics")).status == 401
        token = await server.token(Scope.READ)
        scraped = await server.request(
            "GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
        assert scraped.status == 200 and b"conveyor_http_requests" in scraped.body
    async with serving(tmp_path, auth_required=True,
                       server={"metrics_scrapers": "10.0.0.0/8,127.0.0.1"}) as server:
        assert (await server.request("GET", "/metrics")).status == 200
    async with serving(tmp_path, auth_required=True,
                       server={"metrics_scrapers": "10.0.0.0/8"}) as server:
        assert (await server.request("GET", "/metrics")).status == 401


async def test_a_body_that_never_finishes_is_cut_off(tmp_path: Path) -> None:
    """16 MB declared, 40 bytes sent: 408 and the connection closed after body_timeout."""
    async with serving(tmp_path, server={"body_timeout": 1}) as server:
        answer, elapsed = await server.unfinished(head(
            "POST", "/api/v1/tasks", server.port, {"Content-Type": "application/json"},
            16 * MB - 1,
        ) + b"{" * 40)
        assert answer.status == 408 and answer.closed
        assert "server.body_timeout" in answer.error()["message"]
        assert 0.9 < elapsed < 3.0, elapsed
        assert (await server.request("POST", "/api/v1/tasks", body=ECHO, headers={
            "Content-Type": "application/json"})).status == 201


@pytest.mark.parametrize("sent", [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
                         ids=["silent", "unfinished-headers"])
async def test_a_request_whose_headers_never_finish_is_closed(
    tmp_path: Path, sent: bytes,
) -> None:
    async with serving(tmp_path, server={"header_timeout": 1}) as server:
        answer, elapsed = await server.unfinished(sent)
        assert answer.status == 408 and answer.closed
        assert "server.header_timeout" in answer.error()["message"]
        assert 0.9 < elapsed < 3.0, elapsed


async def test_kept_alive_connections_serve_several_requests(tmp_path: Path) -> None:
    """The header deadline restarts with each request: a kept-alive client is not cut off."""
    async with serving(tmp_path, server={"header_timeout": 1}) as server:
        reader, writer = await server.connect()
        try:
            for _ in range(3):
                writer.write(head("GET", "/healthz", server.port, None, None))
                await writer.drain()
                answer = await read_answer(reader, 5.0, kept_open=True)
                assert answer.status == 200
                await asyncio.sleep(0.6)  # under the keep-alive timeout, over half the deadline
        finally:
            writer.close()



async def test_past_the_cap_the_oldest_silent_connection_makes_room(tmp_path: Path) -> None:
    async with serving(tmp_path, server={"max_connections": 3}) as server:
        silent = [await server.connect() for _ in range(3)]
        try:
            healthz = await server.request("GET", "/healthz")
            assert healthz.status == 200
            async with asyncio.timeout(3):  # the oldest silent socket was closed for it
                assert await silent[0][0].read(1) == b""
        finally:
            for _, writer in silent:
                writer.close()


async def test_when_every_connection_is_busy_requests_get_503_at_once(tmp_path: Path) -> None:
    async with serving(tmp_path, server={"max_connections": 3}) as server:
        busy = [await server.connect() for _ in range(3)]
        try:
            for _, writer in busy:  # each stuck in the middle of its body
                writer.write(head("POST", "/api/v1/tasks", server.port,
                                  {"Content-Type": "application/json"}, 1000) + b"{")
                await writer.drain()
            await asyncio.sleep(0.2)
            refused = await server.request("GET", "/healthz")
            assert refused.status == 503 and refused.closed
            assert refused.error()["code"] == "busy"
            assert "server.max_connections" in refused.error()["message"]
        finally:
            for _, writer in busy:
                writer.close()
        await asyncio.sleep(0.2)
        assert (await server.request("GET", "/healthz")).status == 200


async def test_oversized_headers_are_refused_without_being_kept(tmp_path: Path) -> None:
    """A 20 MB header was read into memory in full (answered 200); now 431 past the limit,
    while a large body behind small headers is still accepted."""
    async with serving(tmp_path, server={"max_header_bytes": 65536}) as server:
        unterminated = head("GET", "/healthz", server.port, {"X-Big": "a" * 70_000}, None)
        over, _ = await server.unfinished(unterminated[:-4])  # all of it read, then refused
        assert over.status == 431 and over.closed
        assert "server.max_header_bytes" in over.error()["message"]
        reader, writer = await server.connect()
        try:  # 20 MB: cut off long before the end (a reset, as the rest is left unread)
            writer.write(head("GET", "/healthz", server.port, {"X-Big": "a" * 20 * MB}, None))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
                answer = await read_answer(reader, 5.0)
                assert answer.status == 431
        finally:
            writer.close()
        payload = {"task_type": "echo", "payload": {"blob": "b" * 900_000}}
        big_body = await server.request("POST", "/api/v1/tasks", body=json.dumps(payload).encode(),
                                        headers={"Content-Type": "application/json"})
        assert big_body.status == 201, big_body.body
