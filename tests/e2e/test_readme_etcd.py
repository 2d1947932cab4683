"""The README's "Distributed on etcd" block, run by bash as written: only the two exported
values are pointed at the test's own database and the shared etcd (the API's port and the key
prefix come from the environment), then a task submitted through the API must succeed, and
etcd must hold the fleet's keys under the prefix. The block is read out of README.md, so the
README and this test cannot drift apart.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from conveyor.client import Client
from tests.distributed.etcd_harness import ETCD_URL, etcdctl, get_prefix
from tests.distributed.harness import database, wait_until
from tests.support.databases import unavailable
from tests.support.processes import conveyor_command
from tests.support.readme import snippet_containing

pytestmark = pytest.mark.slow

#: The API's port (this suite's own range).
PORT = 21320


def as_written(snippet: str, db_url: str) -> str:
    """The snippet with the values of its two ``export`` lines replaced, nothing else."""
    for name, value in (("CONVEYOR_DATABASE_URL", db_url),
                        ("CONVEYOR_COORDINATION_URL", ETCD_URL)):
        snippet, n = re.subn(rf"^export {name}=\S+", f"export {name}={value}", snippet,
                             flags=re.M)
        assert n == 1, f"the README block exports {name} {n} times"
    return snippet


def test_readme_etcd_commands_run_as_written(tmp_path: Path) -> None:
    try:
        etcdctl("endpoint", "health")
    except (AssertionError, subprocess.SubprocessError) as exc:
        unavailable(f"etcd at {ETCD_URL}", exc)
    snippet = snippet_containing("bash", "export CONVEYOR_COORDINATION_URL=etcd://")
    prefix = f"cvreadme{uuid.uuid4().hex[:8]}:"
    with database("mariadb", tmp_path) as db:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update(PATH=f"{Path(conveyor_command()).parent}:{env.get('PATH', '')}",
                   CONVEYOR_PORT=str(PORT), CONVEYOR_REDIS_PREFIX=prefix,
                   CONVEYOR_AUTH_REQUIRED="false")
        log = tmp_path / "snippet.log"
        with log.open("wb") as out:
            shell = subprocess.Popen(["bash", "-c", as_written(snippet, db.url)], env=env,
                                     cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        url = f"http://127.0.0.1:{PORT}"
        try:
            def serving() -> bool:
                assert shell.poll() is None, log.read_text(errors="replace")[-3000:]
                try:
                    return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(serving, 60, 0.2, "the README's API")
            with Client(url, timeout=30) as client:
                assert client.submit("echo", {"from": "readme"}).result(60) == {"from": "readme"}
            keys = get_prefix(prefix)
            assert any(k.startswith("nodes/worker/") for k in keys), sorted(keys)
            assert "scheduler:leader" in keys, sorted(keys)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGKILL)
            shell.wait(10)
            with contextlib.suppress(AssertionError, subprocess.SubprocessError):
                etcdctl("del", "--prefix", prefix)
