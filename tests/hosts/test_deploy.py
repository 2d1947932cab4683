"""deploy/compose.yaml run without a container engine: each Conveyor service's command and
environment from the file, started as processes on a host of its own (one per replica), the
service names resolving to those hosts as Compose's network would.

What the test changes, and why: ``conveyor`` is this venv's console script and ``python`` in
the health checks this interpreter; the database URL keeps its host name ``mariadb`` and port
but names a throw-away database and the test server's root user (the "mariadb" host relays to
the machine's MariaDB, which has no ``conveyor`` user); ``redis`` is a private redis-server on
its own host. Everything else (commands, flags, timings, allowed hosts, keys required, and the
image's ENV from deploy/Dockerfile) is the files'.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from conveyor.client import Client
from tests.distributed.harness import wait_until
from tests.hosts.compose import Service, image_environment, load
from tests.hosts.fleet import HostsCluster, fleet
from tests.support.processes import conveyor_command

ROLES = ("api", "scheduler", "worker")


def hosts_for(services: dict[str, Service]) -> list[str]:
    names = ["migrate"]
    for role in ROLES:
        names += [f"{role}-{i}" for i in range(1, services[role].replicas + 1)]
    return names


def environment(c: HostsCluster, service: Service) -> dict[str, str]:
    """The image's ENV, then the service's, as a container gets them."""
    env = {**image_environment(), **service.environment}
    url = sa.make_url(env["CONVEYOR_DATABASE_URL"])
    ours = sa.make_url(c.db.url)
    env["CONVEYOR_DATABASE_URL"] = url.set(
        username=ours.username, password=ours.password, database=ours.database,
    ).render_as_string(hide_password=False)
    # The harness turns keys off for its other tests; the file leaves the default: required.
    env.setdefault("CONVEYOR_AUTH_REQUIRED", "true")
    return env


def command(service: Service) -> list[str]:
    assert service.conveyor, service.name
    return [conveyor_command(), *service.command[1:]]


def healthy(c: HostsCluster, name: str, service: Service) -> bool:
    """The service's own Compose health check, run on its host."""
    test = service.raw["healthcheck"]["test"]
    assert test[:2] == ["CMD", "python"], test
    argv = c.network[name].command([sys.executable, *test[2:]])
    return subprocess.run(argv, capture_output=True, timeout=30, check=False).returncode == 0


@pytest.mark.timeout(240)
def test_the_compose_fleet_runs_tasks_and_drains_a_worker(tmp_path: Path) -> None:
    services = load(env={})
    with fleet(tmp_path, hosts_for(services), fast=False, migrate=False) as c:
        net = c.network
        c.network.names({
            "redis": net["redis"].address, "mariadb": net["db"].address,
            **{name: host.address for name, host in net.hosts.items()},
            "api": net["api-1"].address,
        })
        migrate = services["migrate"]
        done = subprocess.run(net["migrate"].command(command(migrate)),
                              env=c.env(**environment(c, migrate)), capture_output=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        made = subprocess.run(
            net["migrate"].command([conveyor_command(), "apikey", "create", "--scope", "admin"]),
            env=c.env(**environment(c, migrate)), capture_output=True, text=True, timeout=60,
            check=False)
        assert made.returncode == 0, made.stderr
        key = made.stdout.strip()

        urls = []
        for role in ROLES:
            service = services[role]
            for i in range(1, service.replicas + 1):
                name = f"{role}-{i}"
                c.start_on(net[name], name, command=command(service),
                           **environment(c, service))
                if role == "api":
                    port = int(service.command[service.command.index("--port") + 1])
                    urls.append(c.expose(net[name], port))
        for role in ROLES:
            for i in range(1, services[role].replicas + 1):
                name = f"{role}-{i}"
                wait_until(lambda n=name, s=services[role]: c.check_alive() or healthy(c, n, s),
                           90, 0.5, f"{name} to pass its health check")
        c.wait_leader()
        c.wait_workers(services["worker"].replicas)

        # Tasks through both APIs; the workers of three hosts share them.
        ids = []
        for n, url in enumerate(urls):
            with Client(url, api_key=key, timeout=30) as client:
                infos = client.submit_many([
                    {"task_type": "sleep", "payload": {"seconds": 0.3}} if k % 2 else
                    {"task_type": "echo", "payload": {"api": n, "k": k}} for k in range(30)])
                ids += [info.task_id for info in infos]
            assert httpx.get(f"{url}/api/v1/tasks", timeout=10).status_code == 401
        c.wait_status("SUCCESS", len(ids), 90)
        ran_on = c.db.rows("SELECT DISTINCT worker_id FROM task WHERE status = 'SUCCESS'")
        assert len(ran_on) >= 2, ran_on

        # The worker's stop signal drains: the running task finishes, in its first attempt.
        worker = services["worker"]
        with Client(urls[0], api_key=key, timeout=30) as client:
            slow = client.submit("sleep", payload={"seconds": 3}).id
        wait_until(lambda: c.db.scalar("SELECT worker_id FROM task WHERE id = :i AND "
                                       "status = 'PROCESSING'", i=slow), 30, 0.1, "the slow task")
        proc = c.by_id(str(c.db.scalar("SELECT worker_id FROM task WHERE id = :i", i=slow)))
        c.killed.append(proc)
        proc.signal(getattr(signal, worker.raw["stop_signal"]))
        code = proc.popen.wait(worker.seconds("stop_grace_period"))
        assert code == 0, proc.tail()
        row = c.db.rows("SELECT status, attempt FROM task WHERE id = :i", i=slow)[0]
        assert (row.status, row.attempt) == ("SUCCESS", 1)
        c.check_alive()
