"""The README's own-tasks section, run as a new user runs it: ``mytasks.py`` written from the
README's snippet into an empty directory, ``conveyor standalone --app mytasks:app`` started
there with no PYTHONPATH, and the README's submit line run from that directory.

The snippets are read out of README.md, so the README and this test cannot drift apart.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.client import Client
from tests.e2e.test_standalone import Standalone
from tests.support.readme import snippet_containing

pytestmark = pytest.mark.slow

def test_readme_own_tasks_run_as_written(tmp_path: Path) -> None:
    (tmp_path / "mytasks.py").write_text(snippet_containing("python", "# mytasks.py"))
    command = snippet_containing("bash", "standalone --app mytasks:app").strip()
    assert command == ".venv/bin/conveyor standalone --app mytasks:app", command
    args = tuple(command.split()[2:])  # after ".venv/bin/conveyor standalone"

    server = Standalone(tmp_path, tmp_path / "conveyor.db", args=args)
    server.env.pop("PYTHONPATH", None)  # the point: found from the working directory alone
    server.start()
    try:
        # The banner comes once start-up succeeded, and says where the server listens.
        assert f"standalone on {server.url}" in server.output()
        with Client(server.url, timeout=10) as client:
            assert client.submit("resize_image", {"path": "a.png"}).result(timeout=10) == {
                "path": "a.png", "ok": True}
        usage = snippet_containing("python", "from mytasks import resize")
        blocking = next(line for line in usage.splitlines() if "# blocking" in line)
        imports = next(line for line in usage.splitlines() if line.startswith("from mytasks"))
        script = f"import mytasks\nmytasks.app.url = {server.url!r}\n{imports}\n"
        ran = subprocess.run(
            [sys.executable, "-c", script + blocking], cwd=tmp_path, env=server.env,
            capture_output=True, text=True, timeout=30, check=False,
        )
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "{'path': 'a.png', 'ok': True}"
    finally:
        server.kill()


def test_failed_start_prints_no_banner(tmp_path: Path) -> None:
    server = Standalone(tmp_path, tmp_path / "conveyor.db", args=("--app", "nosuchmodule:app"))
    with pytest.raises(AssertionError, match="exited with 2") as failed:
        server.start(attempts=1)
    assert "cannot import 'nosuchmodule'" in str(failed.value)
    assert "standalone on http" not in str(failed.value)
