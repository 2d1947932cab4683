"""The loop a task process runs: receive one call as JSON, run it, answer as JSON, repeat.

Started by ``subprocess_pool`` with the ``spawn`` method (a fresh interpreter, nothing
inherited from the worker but ``sys.path``, its ``__main__`` script, re-imported under the usual
``if __name__ == "__main__"`` rule, and this module's name). Each request names the function
by module and name (``FunctionRef``) and carries the task, payload included, as JSON; the
answer is ``{"result": ...}`` or ``{"error": "Type: text", "permanent": bool}``. Nothing is
pickled in either direction.

The child leads its own process group, so killing the group on timeout or cancel also ends
whatever the function started (a shell command, its own workers). It watches its parent and
takes the group down when the worker dies, so a task cannot outlive the worker that ran it.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import orjson

from conveyor.errors import PermanentError
from conveyor.executors.context import call_as, task_from_json
from conveyor.executors.functions import FunctionRef, load_function

PARENT_CHECK = 0.5  # seconds between checks that the worker is still alive


def main(conn: Connection, preload: tuple[str, ...]) -> None:
    """The spawn target: prepare, say ready, then serve calls until the pipe closes."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the worker, which decides
    _watch_parent(os.getppid())
    for module in preload:  # import the user's code once, before the first task waits on it
        try:
            importlib.import_module(module)
        except Exception:
            continue
    conn.send_bytes(b'{"ready":true}')
    while True:
        try:
            request = conn.recv_bytes()
        except (EOFError, OSError):
            return
        conn.send_bytes(_answer(orjson.loads(request)))


def _answer(request: dict[str, Any]) -> bytes:
    try:
        func = load_function(FunctionRef(request["module"], request["name"]))
        task = task_from_json(request["task"])
        result = call_as(task, func, task.payload)
    except BaseException as exc:
        return _error(exc)
    try:
        return orjson.dumps({"result": result})
    except TypeError as exc:
        return _error(PermanentError(f"the result is not JSON serialisable: {exc}"))


def _error(exc: BaseException) -> bytes:
    text = str(exc)
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return orjson.dumps({"error": described, "permanent": isinstance(exc, PermanentError)})


def _watch_parent(parent: int) -> None:
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK)
        os.killpg(os.getpgrp(), signal.SIGKILL)

    threading.Thread(target=watch, name="conveyor-parent-watch", daemon=True).start()
