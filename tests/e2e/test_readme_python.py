"""The README's "Your own tasks in Python" snippets, run as written from a temporary directory
against a real ``conveyor standalone``: ``mytasks.py`` and ``submit.py`` are cut out of
README.md, and ``submit.py`` runs as a plain script with no ``PYTHONPATH``, finding the server
through ``CONVEYOR_URL`` as the README says."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_standalone import clean_env, standalone
from tests.support.readme import snippet_containing

pytestmark = pytest.mark.slow

def test_the_readme_submit_example_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "mytasks.py").write_text(snippet_containing("python", "# mytasks.py"))
    (tmp_path / "submit.py").write_text(snippet_containing("python", "# submit.py"))
    with standalone(tmp_path, tmp_path / "conveyor.db", args=("--app", "mytasks:app")) as server:
        env = clean_env({"CONVEYOR_URL": server.url})
        env.pop("PYTHONPATH", None)
        run = subprocess.run(
            [sys.executable, "submit.py"], cwd=tmp_path, env=env, capture_output=True,
            text=True, timeout=60,
        )
    assert run.returncode == 0, run.stderr
    first, task_id, last = run.stdout.splitlines()
    assert ast.literal_eval(first) == {"path": "a.png", "ok": True}
    assert re.fullmatch(r"[0-9A-Z]{26}", task_id), task_id
    assert ast.literal_eval(last) == {"path": "b.png", "ok": True}
