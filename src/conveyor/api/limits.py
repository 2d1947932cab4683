"""Refuse request bodies over the size limit, or slower than the time limit, as they are read.

A body may cost the server memory (its size) and a connection (the time it takes to arrive); a
client that declares 16 MB and sends 40 bytes would otherwise hold its connection for ever.
Both limits are checked on the one ``receive`` the app reads the body through.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api.errors import error_response


class BodyLimit:
    """Pure ASGI middleware: checks Content-Length up front, counts streamed bytes, and gives
    the whole body ``timeout`` seconds from the app's first read."""

    def __init__(self, app: ASGIApp, max_bytes: int, timeout: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self.too_large()(scope, receive, send)
                return
        counter = _Counter(receive, send, self)
        with contextlib.suppress(_Refused):
            await self.app(scope, counter.receive, counter.send)
        if counter.refusal is not None:
            counter.refusal.headers["connection"] = "close"  # the rest of the body is unread
            await counter.refusal(scope, receive, send)

    def too_large(self) -> JSONResponse:
        return error_response(
            413, "too_large", f"the request body is over the {self.max_bytes}-byte limit"
        )

    def too_slow(self) -> JSONResponse:
        return error_response(
            408, "timeout", f"the request body did not arrive within {self.timeout:g} s "
            "(server.body_timeout)"
        )


class _Counter:
    """Counts body bytes as the app reads them and stops the read past either limit.

    FastAPI turns an exception raised while it reads the body into its own 400 ("error parsing
    the body"), so once refused every message the app sends is dropped: the middleware answers
    itself.
    """

    def __init__(self, receive: Receive, send: Send, limit: BodyLimit) -> None:
        self._receive = receive
        self._send = send
        self._limit = limit
        self._seen = 0
        self._deadline: float | None = None
        self._complete = False
        self.refusal: JSONResponse | None = None

    async def receive(self) -> Message:
        if self._complete:  # later reads wait for a disconnect, which has no deadline
            return await self._receive()
        loop = asyncio.get_running_loop()
        if self._deadline is None:
            self._deadline = loop.time() + self._limit.timeout
        try:
            async with asyncio.timeout_at(self._deadline):
                message = await self._receive()
        except TimeoutError:
            self.refusal = self._limit.too_slow()
            raise _Refused from None
        if message["type"] == "http.request":
            self._complete = not message.get("more_body", False)
            self._seen += len(message.get("body", b""))
            if self._seen > self._limit.max_bytes:
                self.refusal = self._limit.too_large()
                raise _Refused
        return message

    async def send(self, message: Message) -> None:
        if self.refusal is None:
            await self._send(message)


class _Refused(Exception):
    pass
