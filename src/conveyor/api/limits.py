"""Refuse request bodies over the size limit before they are read into memory."""

from __future__ import annotations

import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conveyor.api.errors import error_response


class BodyLimit:
    """Pure ASGI middleware: checks Content-Length up front and counts streamed bytes."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        counter = _Counter(receive, send, self.max_bytes)
        with contextlib.suppress(_TooLarge):
            await self.app(scope, counter.receive, counter.send)
        if counter.too_large:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413, "too_large", f"the request body is over the {self.max_bytes}-byte limit"
        )
        await response(scope, receive, send)


class _Counter:
    """Counts body bytes as the app reads them and stops the read past the limit.

    FastAPI turns an exception raised while it reads the body into its own 400 ("error parsing
    the body"), so once over the limit every message the app sends is dropped: the middleware
    answers 413 itself.
    """

    def __init__(self, receive: Receive, send: Send, max_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self._max = max_bytes
        self._seen = 0
        self.too_large = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self._seen += len(message.get("body", b""))
            if self._seen > self._max:
                self.too_large = True
                raise _TooLarge
        return message

    async def send(self, message: Message) -> None:
        if not self.too_large:
            await self._send(message)


class _TooLarge(Exception):
    pass
