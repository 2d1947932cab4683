"""The host harness itself: hosts reach each other over the bridge and nothing is left behind."""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path

from tests.hosts.fleet import fleet
from tests.hosts.netns import OWNERS, PREFIX, ip, namespaces, network, sweep

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


def test_a_dead_runs_namespaces_are_swept() -> None:
    with network() as net:  # makes sure namespaces can be made here, or fails/skips
        mine = net.add("a").netns
        stale_tag = f"{PREFIX}{secrets.token_hex(3)}"
        ip("netns", "add", f"{stale_tag}-1")
        (OWNERS / stale_tag).write_text(str(dead_pid()))
        sweep()
        left = namespaces()
        assert f"{stale_tag}-1" not in left
        assert mine in left, "a live run's namespaces are kept"


def dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid
