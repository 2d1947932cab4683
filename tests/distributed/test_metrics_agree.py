"""After a distributed run, every process's /metrics adds up to what the store holds.

Each process counts the moves it wrote itself (creates in the API, starts and finishes in the
workers, timeouts and recoveries in the schedulers), so the sums over processes must equal the
store's counts exactly.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.distributed.harness import cluster, free_port, wait_until

pytestmark = pytest.mark.slow


def scrape(urls: list[str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Sum every sample over the processes, keyed by name and labels."""
    totals: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
    for url in urls:
        text = httpx.get(f"{url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[(sample.name, tuple(sorted(sample.labels.items())))] += sample.value
    return totals


def total(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str,
          **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, ls), v in metrics.items() if n == name and want <= set(ls))


@pytest.mark.timeout(180)
def test_counters_agree_with_the_store(tmp_path: Path) -> None:
    with cluster(tmp_path) as c:
        c.api()
        ports = [free_port() for _ in range(4)]
        for port in ports[:2]:
            c.scheduler(CONVEYOR_METRICS_PORT=str(port))
        for port in ports[2:]:
            c.worker(capacity=20, CONVEYOR_METRICS_PORT=str(port))
        c.wait_workers(2)
        client = c.client()
        specs = [{"task_type": "echo", "payload": {"i": i}} for i in range(150)]
        specs += [{"task_type": "fail", "payload": {"permanent": True}} for _ in range(10)]
        specs += [{"task_type": "fail", "payload": {"times": 1}} for _ in range(10)]
        specs += [{"task_type": "sleep", "payload": {"seconds": 5}, "timeout_seconds": 0.3,
                   "max_retries": 0} for _ in range(5)]
        client.submit_many(specs)
        pending = client.submit("sleep", {"seconds": 1}, delay_seconds=60)
        client.cancel(pending.id)
        finals = ("SUCCESS", "FAILED", "TIMEOUT", "CANCELLED")
        wait_until(lambda: sum(c.count(s) for s in finals) == len(specs) + 1, 90, 0.2,
                   "every task final")

        urls = [c.url or ""] + [f"http://127.0.0.1:{p}" for p in ports]
        metrics = scrape(urls)
        created = c.db.scalar("SELECT COUNT(*) FROM task")
        assert total(metrics, "conveyor_tasks_created_total") == created
        for status in finals:
            stored = c.count(status)
            counted = total(metrics, "conveyor_tasks_finished_total", status=status)
            print(f"{status}: store {stored}, metrics {counted}")
            assert counted == stored
        retries = c.db.scalar(
            "SELECT COUNT(*) FROM task_logs WHERE to_status = 'PENDING' "
            "AND from_status IN ('FAILED', 'TIMEOUT')"
        )
        assert total(metrics, "conveyor_tasks_retried_total") == retries == 10
        attempts = c.db.scalar("SELECT COUNT(*) FROM task_logs WHERE to_status = 'PROCESSING'")
        assert total(metrics, "conveyor_tasks_started_total") == attempts
        assert total(metrics, "conveyor_task_duration_seconds_count") == attempts
        assert total(metrics, "conveyor_scheduler_is_leader") == 1
        for url in urls[1:]:
            assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
