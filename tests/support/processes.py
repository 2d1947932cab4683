"""Helpers for tests that start real servers and processes: free ports, the console script."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def conveyor_command() -> str:
    """The ``conveyor`` console script of the interpreter running the tests."""
    found = Path(sys.executable).parent / "conveyor"
    if found.exists():
        return str(found)
    which = shutil.which("conveyor")
    assert which, "the conveyor console script is not installed"
    return which
