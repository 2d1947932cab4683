"""Every process's /metrics describes the process itself: CPU, memory and open files
(prometheus-client's process collector), its database pool and its Redis connections. The API
serves them on its own port; schedulers and workers on their ``--metrics-port``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.distributed.harness import cluster, free_port, wait_until

pytestmark = pytest.mark.slow

PROCESS = ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds")
POOL = ("conveyor_db_pool_size", "conveyor_db_pool_checked_out", "conveyor_db_pool_checked_in",
        "conveyor_db_pool_overflow", "conveyor_redis_connections")


def samples(url: str) -> dict[str, float]:
    answer = httpx.get(f"{url}/metrics", timeout=10)
    answer.raise_for_status()
    return {
        s.name + ("" if not s.labels else "{" + ",".join(
            f"{k}={v}" for k, v in sorted(s.labels.items())) + "}"): s.value
        for family in text_string_to_metric_families(answer.text) for s in family.samples
    }


@pytest.mark.timeout(120)
def test_every_process_reports_its_resources(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.api()
        ports = [free_port(), free_port()]
        c.scheduler(CONVEYOR_METRICS_PORT=str(ports[0]))
        c.worker(capacity=2, CONVEYOR_METRICS_PORT=str(ports[1]))
        c.wait_workers(1)
        c.client().submit("echo", {"x": 1})
        c.wait_status("SUCCESS", 1, 30)
        assert c.url is not None
        urls = {"api": c.url, "scheduler": f"http://127.0.0.1:{ports[0]}",
                "worker": f"http://127.0.0.1:{ports[1]}"}
        for role, url in urls.items():
            found = wait_until(lambda url=url: _up(url), 30, 0.2, f"the {role}'s /metrics")
            for name in (*PROCESS, *POOL[:4]):
                assert name in found, f"{role} lacks {name}"
            assert found["conveyor_db_pool_size"] == 10, role  # the engine's pool_size
            assert found["process_resident_memory_bytes"] > 1_000_000, role
            assert found["process_open_fds"] >= 3, role
            assert found["conveyor_redis_connections{state=in_use}"] >= 0, role
            assert found["conveyor_redis_connections{state=idle}"] >= 1, role


def _up(url: str) -> dict[str, float] | None:
    try:
        return samples(url)
    except httpx.HTTPError:
        return None
