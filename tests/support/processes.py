"""Helpers for tests that start real servers and processes: free ports, the console script."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import sys
from pathlib import Path

#: ``CONVEYOR_TEST_PORTS=21000-21099``: servers the tests start take ports of that range only
#: (engineers sharing a machine each have their own); unset, any free port.
_RANGE = os.environ.get("CONVEYOR_TEST_PORTS", "")
_NEXT = itertools.cycle(range(int(_RANGE.split("-")[0]), int(_RANGE.split("-")[1]) + 1)
                        ) if _RANGE else None


def free_port() -> int:
    for _ in range(1000):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", 0 if _NEXT is None else next(_NEXT)))
            except OSError:
                continue
            port: int = sock.getsockname()[1]
            return port
    raise AssertionError(f"no free port in CONVEYOR_TEST_PORTS={_RANGE}")


def conveyor_command() -> str:
    """The ``conveyor`` console script of the interpreter running the tests."""
    found = Path(sys.executable).parent / "conveyor"
    if found.exists():
        return str(found)
    which = shutil.which("conveyor")
    assert which, "the conveyor console script is not installed"
    return which
