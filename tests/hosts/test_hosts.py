"""The host harness itself: hosts reach each other over the bridge and nothing is left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.hosts.fleet import fleet
from tests.hosts.netns import namespaces, network

PROBE = "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 1).close()"


def reaches(command: list[str], address: str, port: int) -> bool:
    done = subprocess.run([*command, sys.executable, "-c", PROBE, address, str(port)],
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0


def test_a_task_crosses_hosts_and_a_cut_host_is_unreachable(tmp_path: Path) -> None:
    with fleet(tmp_path, ["api", "scheduler", "worker"]) as c:
        net = c.network
        c.api_on(net["api"])
        c.scheduler_on(net["scheduler"])
        c.worker_on(net["worker"])
        c.wait_workers(1)
        with c.client() as client:
            info = client.wait(client.submit("echo", payload={"x": 1}).id, timeout=60)
        assert info.status == "SUCCESS"
        redis_host = net["redis"].address
        worker = net["worker"].command([])
        assert reaches(worker, redis_host, 6379)
        net.cut(net["worker"])
        assert not reaches(worker, redis_host, 6379)
        net.mend(net["worker"])
        assert reaches(worker, redis_host, 6379)
        tag = net.tag
    assert not [ns for ns in namespaces() if ns.startswith(tag)]
    assert not Path(f"/etc/netns/{tag}-1").exists()


def test_the_network_is_removed_after_a_failure() -> None:
    tag = ""
    try:
        with network() as net:
            tag = net.tag
            net.add("a")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert tag and not [ns for ns in namespaces() if ns.startswith(tag)]
