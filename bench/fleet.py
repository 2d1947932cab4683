"""Fleet scale across hosts: one elected scheduler, N worker processes spread over hosts.

    .venv/bin/python bench/fleet.py                        # 10, 50 and 100 workers
    .venv/bin/python bench/fleet.py --workers 10,50 --quick

Hosts are network namespaces (tests/hosts: the API, the scheduler, Redis, the database relay
and ``--hosts`` worker hosts, each on its own address behind one bridge); the default timings
are kept (no shortened leases). The fleet grows step by step (10, then 50, then 100 workers of
capacity 10), and at each size:

1. **Dispatch latency**: ``--latency-tasks`` echo tasks submitted at ``--rate`` per second;
   per task, the time from its create committed to its attempt started (``started_at -
   created_at``): the dispatcher's pass, the worker's fetch, the hops between hosts. p50/p99.
2. **Drain**: ``--drain-tasks`` sleep tasks of ``--task-seconds`` queued while the normal
   priority is paused, then resumed: tasks finished per second from the resume to the last one.

Also per size: the mean resident memory of a worker process, and the CPU seconds the database
relay used (one Python process carries every host's SQL; when it nears one core it, not
Conveyor, is the limit). Writes ``bench/results/fleet-<UTC timestamp>.json``. Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import BENCH, ROOT, percentile

sys.path.insert(0, str(ROOT))  # the host harness lives with the tests

from tests.distributed.harness import Proc, wait_until
from tests.hosts.fleet import HostsCluster, fleet

from conveyor.client import Client

BATCH = 10


def rss_mb(proc: Proc) -> float:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(proc: Proc) -> float:
    fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks


def finished(c: HostsCluster, ids: list[str]) -> list[Any]:
    rows: list[Any] = []
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ", ".join(f":i{k}" for k in range(len(chunk)))
        rows += c.db.rows(
            "SELECT created_at, started_at, finished_at FROM task WHERE status = 'SUCCESS' "
            f"AND id IN ({marks})", **{f"i{k}": v for k, v in enumerate(chunk)})
    return rows


def latency(c: HostsCluster, client: Client, count: int, rate: float) -> dict[str, float]:
    ids: list[str] = []
    began = time.monotonic()
    for n in range(0, count, BATCH):
        time.sleep(max(0.0, began + n / rate - time.monotonic()))
        infos = client.submit_many([{"task_type": "echo", "payload": {"n": k}}
                                    for k in range(n, min(n + BATCH, count))])
        ids += [info.task_id for info in infos]
    rows = wait_until(lambda: (r := finished(c, ids)) and len(r) == len(ids) and r,
                      120 + count / rate, 0.5, "the latency tasks")
    waits = [(r.started_at - r.created_at) * 1000 for r in rows]
    return {"p50_ms": percentile(waits, 50), "p99_ms": percentile(waits, 99)}


def drain(c: HostsCluster, client: Client, count: int, seconds: float) -> float:
    client.pause("normal")
    ids: list[str] = []
    for n in range(0, count, 500):
        infos = client.submit_many([{"task_type": "sleep", "payload": {"seconds": seconds}}
                                    for _ in range(min(500, count - n))])
        ids += [info.task_id for info in infos]
    resumed = time.time()
    client.resume("normal")
    rows = wait_until(lambda: (r := finished(c, ids)) and len(r) == len(ids) and r,
                      600, 0.5, "the drain tasks")
    return count / (max(r.finished_at for r in rows) - resumed)


def grow(c: HostsCluster, hosts: int, capacity: int, size: int) -> list[Proc]:
    workers = [p for p in c.procs if p.name.startswith("worker")]
    while len(workers) < size:
        host = c.network[f"w{len(workers) % hosts + 1}"]
        workers.append(c.worker_on(host, capacity))
    c.wait_workers(size, timeout=60 + 3 * size)
    return workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="10,50,100", help="fleet sizes, in order")
    parser.add_argument("--hosts", type=int, default=5, help="worker hosts")
    parser.add_argument("--capacity", type=int, default=10)
    parser.add_argument("--latency-tasks", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=100.0, help="latency tasks per second")
    parser.add_argument("--drain-tasks", type=int, default=5000)
    parser.add_argument("--task-seconds", type=float, default=0.1)
    parser.add_argument("--quick", action="store_true", help="a fifth of the tasks")
    args = parser.parse_args()
    sizes = [int(n) for n in args.workers.split(",")]
    scale = 5 if args.quick else 1
    hosts = ["api", "scheduler", *(f"w{i}" for i in range(1, args.hosts + 1))]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="conveyor-fleet-") as tmp, \
            fleet(Path(tmp), hosts, fast=False) as c:
        c.api_on(c.network["api"])
        c.scheduler_on(c.network["scheduler"])
        c.wait_leader()
        relay = next(p for p in c.procs if p.name == "db-relay")
        with Client(c.url, timeout=60) as client:
            for size in sizes:
                workers = grow(c, args.hosts, args.capacity, size)
                relay_cpu = cpu_seconds(relay)
                figures = latency(c, client, args.latency_tasks // scale, args.rate)
                figures["drain_per_s"] = drain(c, client, args.drain_tasks // scale,
                                               args.task_seconds)
                figures["worker_rss_mb"] = sum(map(rss_mb, workers)) / len(workers)
                figures["relay_cpu_s"] = cpu_seconds(relay) - relay_cpu
                results.append({"workers": size, **figures})
                print(f"{size:4d} workers  dispatch p50 {figures['p50_ms']:7.1f} ms  "
                      f"p99 {figures['p99_ms']:7.1f} ms  drain {figures['drain_per_s']:6.0f}/s  "
                      f"worker RSS {figures['worker_rss_mb']:.0f} MB  "
                      f"relay CPU {figures['relay_cpu_s']:.1f} s", flush=True)
    out = BENCH / "results" / f"fleet-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
