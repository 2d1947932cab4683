"""A tiny HTTP "business service" for the http executor, misbehaving on request.

A hand-written HTTP/1.1 server on an asyncio loop in a daemon thread (a raw server, rather
than uvicorn, because it must be able to reset a connection in the middle of a request). The
http executor POSTs ``{"task_id", "attempt", "task_type", "payload"}``; ``payload["behave"]``
picks the answer:

``ok`` (default)  200 ``{"success": true, "data": {"echo": payload}}``
``slow``          the same after ``payload["seconds"]`` (set it above the task timeout)
``error``         500 (a retryable failure for the executor)
``reset``         the connection is closed with a RST before any answer

Every delivery is recorded with its ``Idempotency-Key`` header (``task_id:attempt``), so the
test can count repeated deliveries of one attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections import Counter
from typing import Any

from tests.faults.proxy import abort_with_rst

MAX_BODY = 1 << 20


class BusinessService:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self.deliveries: Counter[str] = Counter()  # idempotency key -> requests seen
        self.behaviours: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="business",
                                        daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/work"

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one(reader, writer):
                pass
        except (OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            if not writer.is_closing():
                writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection should end."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip()
                   for k, _, v in (line.partition(":") for line in lines[1:] if line)}
        length = int(headers.get("content-length", "0"))
        if length > MAX_BODY:
            raise ValueError("body too large")
        body = await reader.readexactly(length) if length else b""
        try:
            request: dict[str, Any] = json.loads(body or b"{}")
        except ValueError:
            request = {}
        payload = request.get("payload") or {}
        behave = str(payload.get("behave", "ok"))
        self.behaviours[behave] += 1
        self.deliveries[headers.get("idempotency-key", "?")] += 1
        if behave == "reset":
            abort_with_rst(writer)
            return False
        if behave == "slow":
            await asyncio.sleep(float(payload.get("seconds", 5)))
        if behave == "error":
            status, answer = "500 Internal Server Error", {"error": "asked to fail"}
        else:
            status, answer = "200 OK", {"success": True, "data": {"echo": payload}}
        data = json.dumps(answer).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n".encode() + data
        )
        await writer.drain()
        return headers.get("connection", "").lower() != "close"

    def close(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._server.wait_closed(), 1)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(stop(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()

    def __enter__(self) -> BusinessService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
