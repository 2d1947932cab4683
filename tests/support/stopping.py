"""Task functions and business services for the stopping tests (docs/design.md §8.13).

Every kind of work writes the same journal, a file of ``time kind attempt`` lines, appended at
the start of an attempt and again after it slept ``delays[attempt - 1]`` seconds: the late line
is the side effect that must not appear once an attempt is recorded TIMEOUT or CANCELLED. The
functions live at module level so a task process can import them by module and name.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc
import grpc.aio

from conveyor import Conveyor, current_task
from conveyor.executors.grpc_pb import executor_pb2, executor_pb2_grpc
from tests.support.asgi import Message, Receive, Send, read_body, serving

app = Conveyor()


def note(journal: str, event: str, attempt: int) -> None:
    with open(journal, "a") as out:
        out.write(f"{time.time():.6f} {event} {attempt}\n")


def read_journal(journal: Path) -> list[tuple[float, str, int]]:
    if not journal.exists():
        return []
    lines = [line.split() for line in journal.read_text().splitlines()]
    return [(float(at), event, int(attempt)) for at, event, attempt in lines]


def _work(journal: str, delays: list[float]) -> dict[str, int]:
    attempt = current_task().attempt
    note(journal, "start", attempt)
    time.sleep(delays[attempt - 1])
    note(journal, "end", attempt)
    return {"attempt": attempt}


@app.task("stop.process", max_retries=1)
def in_process(journal: str, delays: list[float]) -> dict[str, int]:
    return _work(journal, delays)


@app.task("stop.thread", max_retries=1, isolation="thread")
def in_thread(journal: str, delays: list[float]) -> dict[str, int]:
    return _work(journal, delays)


@app.task("stop.async", max_retries=1)
async def polite(journal: str, delays: list[float]) -> dict[str, int]:
    attempt = current_task().attempt
    note(journal, "start", attempt)
    await asyncio.sleep(delays[attempt - 1])
    note(journal, "end", attempt)
    return {"attempt": attempt}


@app.task("stop.stubborn", max_retries=1)
async def stubborn(journal: str, delays: list[float]) -> dict[str, int]:
    """Swallows every cancellation and sleeps on: the worker cannot stop it."""
    attempt = current_task().attempt
    note(journal, "start", attempt)
    deadline = time.monotonic() + delays[attempt - 1]
    while (left := deadline - time.monotonic()) > 0:
        try:
            await asyncio.sleep(left)
        except asyncio.CancelledError:
            note(journal, "swallowed", attempt)
    note(journal, "end", attempt)
    return {"attempt": attempt}


# -- business services: the same journal, written by the server ----------------------------

async def _http_app(scope: Message, receive: Receive, send: Send) -> None:
    call = json.loads(await read_body(receive))
    journal, attempt = call["payload"]["journal"], call["attempt"]
    note(journal, "start", attempt)
    sleep = asyncio.ensure_future(asyncio.sleep(call["payload"]["delays"][attempt - 1]))
    gone = asyncio.ensure_future(receive())  # http.disconnect when the worker gives up
    await asyncio.wait({sleep, gone}, return_when=asyncio.FIRST_COMPLETED)
    if gone.done():
        sleep.cancel()
        note(journal, "dropped", attempt)
        return
    gone.cancel()
    note(journal, "end", attempt)
    reply = json.dumps({"success": True, "data": {"attempt": attempt}}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": reply})


@asynccontextmanager
async def http_service() -> AsyncIterator[str]:
    """The business service over HTTP on a free port; yields its URL."""
    async with serving(_http_app) as base:
        yield f"{base}/work"


class _Servicer(executor_pb2_grpc.ExecutorServicer):
    async def Execute(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.ExecuteResponse:
        payload = json.loads(request.payload_json)
        journal, attempt = payload["journal"], request.attempt
        note(journal, "start", attempt)
        try:
            await asyncio.sleep(payload["delays"][attempt - 1])
        except asyncio.CancelledError:  # grpc.aio cancels the handler when the call is
            note(journal, "dropped", attempt)
            raise
        note(journal, "end", attempt)
        data = json.dumps({"attempt": attempt})
        return executor_pb2.ExecuteResponse(success=True, data_json=data)


@asynccontextmanager
async def grpc_service() -> AsyncIterator[str]:
    """The business service over gRPC on a free port; yields its target."""
    server = grpc.aio.server()
    executor_pb2_grpc.add_ExecutorServicer_to_server(_Servicer(), server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


# -- plain functions the task-process tests call by module and name ------------------------


def start_sleeper(pidfile: str) -> None:
    """Start a grandchild, write ``own_pid grandchild_pid``, then hang."""
    sleeper = subprocess.Popen(["sleep", "60"])
    Path(pidfile).write_text(f"{os.getpid()} {sleeper.pid}")
    time.sleep(60)


def crash(code: int) -> None:
    os._exit(code)


def whoami(delay: float = 0.0) -> int:
    time.sleep(delay)
    return os.getpid()
