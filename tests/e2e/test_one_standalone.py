"""Two ``conveyor standalone`` processes on one SQLite file: the second is refused at start
with a message naming the first, instead of both electing themselves leader."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from tests.e2e.test_standalone import clean_env, standalone
from tests.support.processes import conveyor_command, free_port

pytestmark = pytest.mark.slow


def test_second_standalone_on_one_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "conveyor.db"
    with standalone(tmp_path, db) as first:
        second = subprocess.run(
            [conveyor_command(), "standalone", "--db", str(db), "--port", str(free_port())],
            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=30,
            check=False,
        )
        assert second.returncode == 2, second.stderr
        assert first.proc is not None
        assert f"another conveyor standalone (pid {first.proc.pid})" in second.stderr
        assert "--db" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.proc is not None and first.proc.poll() is None  # the first runs on
        assert first.stop(signal.SIGTERM) == 0
    # Once the first has stopped (or died: the kernel drops the lock) the file is free again.
    with standalone(tmp_path, db) as again:
        assert again.stop(signal.SIGKILL) != 0
    with standalone(tmp_path, db) as after_kill:
        assert after_kill.stop(signal.SIGTERM) == 0
