"""A rolling deploy of a fleet with the user's own tasks (issue 11, item 3), as real processes:
an API and a worker started without ``--app``, the only worker with ``--app`` stopped.

The task of the app's type is accepted (the API knows the type from the worker that announced
it, without importing the app), stays PENDING instead of being taken and failed by the worker
that lacks the function, is reported as having no capable worker (queues API, ``conveyor
queues``, the metric) while other types keep flowing, and succeeds once a worker with the app
is back.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.distributed.harness import Cluster, cluster
from tests.support.processes import conveyor_command

pytestmark = pytest.mark.slow

APP = '''
from conveyor import Conveyor

app = Conveyor()


@app.task("resize")
def resize(n: int) -> int:
    return n * 2
'''


def app_worker(c: Cluster) -> None:
    n = sum(p.name.startswith("worker") for p in c.procs)
    c.start(f"worker-{n}-app", "worker", "--capacity", "2", "--app", "myapp:app")


@pytest.mark.timeout(150)
def test_a_type_no_live_worker_runs_waits_pending_until_one_comes(tmp_path: Path) -> None:
    (tmp_path / "myapp.py").write_text(APP)
    with cluster(tmp_path, "mariadb") as c:
        c.api(wait=False)
        c.scheduler()
        c.worker(2)  # no --app: built-ins only
        app_worker(c)
        c.wait_api()
        c.wait_workers(2)
        c.wait_leader()
        with c.client() as client:
            plain = next(w for w in client.workers() if "resize" not in w["types"])
            assert "echo" in plain["types"], plain

            old = next(p for p in c.procs if p.name.endswith("-app"))
            old.signal(signal.SIGTERM)  # the rolling deploy stops the app's only worker
            old.popen.wait(30)
            c.killed.append(old)

            task = client.submit("resize", {"n": 21})
            echo = client.submit("echo", {"x": 1})
            assert client.wait(echo.id, 30).status == "SUCCESS"
            time.sleep(2)  # several dispatch passes (0.2 s apart) with a free plain worker
            assert client.get(task.id).status == "PENDING"
            assert client.queues()["no_worker"] == {"resize": 1}

            shown = subprocess.run(
                [conveyor_command(), "queues", "--url", str(c.url)], capture_output=True,
                text=True, timeout=30, env=c.env(), check=False,
            )
            assert shown.returncode == 0, shown.stderr
            assert "no live worker runs type resize" in shown.stdout
            metric = 'conveyor_pending_without_worker{type="resize"} 1.0'
            assert metric in httpx.get(f"{c.url}/metrics", timeout=10).text

            app_worker(c)
            assert client.wait(task.id, 60).status == "SUCCESS"
            assert client.get(task.id).result == 42
            assert client.queues()["no_worker"] == {}
        starts = c.db.scalar(
            "SELECT COUNT(*) FROM task_logs WHERE task_id = :t AND to_status = 'PROCESSING'",
            t=task.id,
        )
        assert starts == 1  # never started (and failed) on the worker without the app
        c.check_alive()
