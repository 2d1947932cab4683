"""A bare HTTP/1.1 JSON client on kept-alive connections (stdlib only), for load against
Conveyor's API: at 50 concurrent requests httpx's pool costs ~10 ms of CPU a request here and
would measure itself instead of the server. The sync side is ``http.client``, which sends a
request in two writes (head, body), so its socket gets TCP_NODELAY, as redis-py's does: else
Nagle holds the body until the server's delayed ACK, up to 200 ms a request."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit


async def post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str,
    body: Any,
) -> int:
    """One POST on a kept-alive connection to ``host`` (``name:port``); the status code."""
    data = json.dumps(body).encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n".encode() + data
    )
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


class AsyncPool:
    """Kept-alive connections handed to one request at a time (as many as run concurrently)."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.free: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, path: str, body: Any) -> int:
        conn = self.free.pop() if self.free else await asyncio.open_connection(
            self.host, self.port)
        status = await post(*conn, f"{self.host}:{self.port}", path, body)
        self.free.append(conn)
        return status


class _NoDelay(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class SyncConnection:
    """One kept-alive connection (per thread: ``http.client`` is not thread-safe)."""

    def __init__(self, url: str) -> None:
        parsed = urlsplit(url)
        self.conn = _NoDelay(parsed.hostname or "127.0.0.1", parsed.port)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        self.conn.request("POST", path, json.dumps(body).encode(),
                          {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
