"""Conveyor's benchmark against the peers (docs/design.md §5, issue 6).

    .venv/bin/python bench/run.py                  # every figure, 3 runs each, with peers
    .venv/bin/python bench/run.py --quick          # smaller sizes, same shape (~4 min)
    .venv/bin/python bench/run.py --only latency --no-peers

Figures: creation, latency, drain, concurrency, recovery. Prints a table (median and min-max of
the runs) and writes everything, raw runs included, to ``bench/results/<timestamp>.json``.
Needs the local Redis and MariaDB (``scripts/services.sh``); installs each peer into
``bench/.venvs/<peer>`` on first use. Every process it starts is killed before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import conveyor_figs as cf
import peer_figs as pf
from harness import (
    BENCH,
    ROOT,
    BenchError,
    Procs,
    install_signal_exit,
    sql,
    stop_everything,
    summary,
)

FIGURES = ("creation", "latency", "drain", "concurrency", "recovery")


@dataclass(frozen=True)
class Sizes:
    runs: int
    single: int  # figure 1: one-task requests per run
    batched: int  # figure 1: tasks per run in batches of 100
    creation_cap: float  # figure 1: seconds a run may take at most
    samples: int  # figure 2: latency samples per run
    gap: float  # figure 2: seconds between submissions
    drain: int  # figure 3
    drain_cap: float  # figure 3: a peer still draining after this many seconds is cut short
    sleepers: int  # figure 4


FULL = Sizes(runs=3, single=10_000, batched=50_000, creation_cap=15, samples=200, gap=0.02,
             drain=20_000, drain_cap=30, sleepers=10_000)
QUICK = Sizes(runs=3, single=3_000, batched=20_000, creation_cap=8, samples=100, gap=0.02,
              drain=5_000, drain_cap=30, sleepers=2_000)

Row = tuple[str, str, str, str, list[float]]  # figure, system, metric, unit, values per run


class Bench:
    def __init__(self, sizes: Sizes, peers: list[str], peer_db: int, log_dir: Path) -> None:
        self.sizes = sizes
        self.peers = [pf.PEERS[name] for name in peers]
        self.procs = Procs(log_dir)
        self.peer_redis = pf.PeerRedis(peer_db)
        self.results: dict[str, Any] = {}
        self.rows: list[Row] = []

    def record(self, figure: str, system: str, runs: list[dict[str, float]],
               metrics: list[tuple[str, str]]) -> None:
        self.results.setdefault(figure, {})[system] = {
            "runs": runs,
            "summary": {m: summary([r[m] for r in runs]) for m in runs[0]} if runs else {},
        }
        for metric, unit in metrics:
            self.rows.append((figure, system, metric, unit, [r[metric] for r in runs]))

    async def repeat(self, what: str, fn: Callable[[], Awaitable[dict[str, float]]]) -> list[
            dict[str, float]]:
        runs = []
        for i in range(self.sizes.runs):
            began = time.monotonic()
            runs.append(await fn())
            print(f"  {what} run {i + 1}/{self.sizes.runs}: "
                  + ", ".join(f"{k}={v:.4g}" for k, v in runs[-1].items())
                  + f" ({time.monotonic() - began:.0f} s)", flush=True)
        return runs

    async def creation(self) -> None:
        s = self.sizes
        out = await cf.creation(self.procs, s.runs, s.single, s.batched, s.creation_cap)
        for key, label in (("single", "one per request, 50 clients"),
                           ("batch100", "batches of 100, 50 clients")):
            print(f"  conveyor {label}: " + ", ".join(
                f"{r['tasks_per_s']:.0f}/s (client CPU {r['client_cpu_share']:.0%})"
                for r in out[key]), flush=True)
            self.record("1 creation", f"conveyor API (2 processes), {label}", out[key],
                        [("tasks_per_s", "tasks/s")])

    async def latency(self) -> None:
        s = self.sizes
        metrics = [("p50_ms", "ms"), ("p95_ms", "ms"), ("p99_ms", "ms")]

        def run(fn: Callable[[], Awaitable[list[float]]]) -> Callable[[], Awaitable[
                dict[str, float]]]:
            async def go() -> dict[str, float]:
                return cf.latency_stats(await fn())
            return go

        def on(coordination: str) -> Callable[[], Awaitable[dict[str, float]]]:
            async def go() -> dict[str, float]:
                seconds, writes = await cf.latency_distributed(
                    self.procs, s.samples, s.gap, 10, coordination)
                extra = {"etcd_writes_per_task": writes} if coordination == "etcd" else {}
                return cf.latency_stats(seconds) | extra
            return go

        systems: list[tuple[str, Callable[[], Awaitable[dict[str, float]]]]] = [
            ("conveyor standalone (SQLite)", run(lambda: cf.latency_standalone(
                self.procs, s.samples, s.gap, 10))),
            ("conveyor distributed (MariaDB+Redis)", on("redis")),
            ("conveyor distributed (MariaDB+etcd)", on("etcd")),
        ]
        for peer in self.peers:
            systems.append((peer.name, run(lambda p=peer: pf.latency_run(  # type: ignore[misc]
                self.procs, p, self.peer_redis, s.samples, s.gap))))
        for name, fn in systems:
            extra = [("etcd_writes_per_task", "etcd writes/task")] if "etcd" in name else []
            self.record("2 submit→start", name, await self.repeat(f"latency {name}", fn),
                        metrics + extra)

    async def drain(self) -> None:
        s = self.sizes
        systems: list[tuple[str, Callable[[], Awaitable[dict[str, float]]]]] = [
            ("conveyor (2 workers x 100, 1 scheduler)",
             lambda: cf.drain(self.procs, s.drain, workers=2, capacity=100)),
            ("conveyor on etcd (2 workers x 100, 1 scheduler)",
             lambda: cf.drain(self.procs, s.drain, workers=2, capacity=100,
                              coordination="etcd")),
        ]
        for peer in self.peers:
            systems.append((peer.name, lambda p=peer: pf.drain_run(  # type: ignore[misc]
                self.procs, p, self.peer_redis, s.drain, s.drain_cap)))
        for name, fn in systems:
            metrics = [("tasks_per_s", "tasks/s")]
            if "etcd" in name:
                metrics.append(("etcd_writes_per_task", "etcd writes/task"))
            self.record("3 drain", name, await self.repeat(f"drain {name}", fn), metrics)

    async def concurrency(self) -> None:
        n = self.sizes.sleepers
        runs = await self.repeat("concurrency", lambda: cf.concurrency(self.procs, n, 1.0))
        self.record("4 concurrency", f"conveyor, {n:,} x sleep 1 s, 1 worker", runs,
                    [("wall_s", "s"), ("resume_to_last_s", "s")])

    async def recovery(self) -> None:
        runs = await self.repeat("failover", lambda: cf.failover(self.procs))
        self.record("5 recovery", "leader kill -9, 3 schedulers, 1 s lease", runs,
                    [("failover_s", "s"), ("max_start_gap_s", "s")])
        runs = await self.repeat("failover on etcd",
                                 lambda: cf.failover(self.procs, coordination="etcd"))
        self.record("5 recovery", "leader kill -9, 3 schedulers, 1 s lease, on etcd", runs,
                    [("failover_s", "s"), ("max_start_gap_s", "s")])
        runs = await self.repeat("worker crash", lambda: cf.worker_recovery(self.procs))
        self.record("5 recovery", "worker kill -9, heartbeat TTL 3 s", runs,
                    [("recovery_s", "s")])
        # The same with every timing setting at its default (the bars: < 10 s and < 30 s).
        runs = await self.repeat("failover, defaults",
                                 lambda: cf.failover(self.procs, lease=None))
        self.record("5 recovery", "leader kill -9, 3 schedulers, default settings", runs,
                    [("failover_s", "s"), ("max_start_gap_s", "s")])
        runs = await self.repeat("worker crash, defaults",
                                 lambda: cf.worker_recovery(self.procs, ttl=None))
        self.record("5 recovery", "worker kill -9, default settings", runs,
                    [("recovery_s", "s")])

    async def run(self, figures: list[str]) -> None:
        if self.peers and {"latency", "drain"} & set(figures):
            await self.peer_redis.claim()
        try:
            for figure in figures:
                print(f"== {figure}", flush=True)
                await getattr(self, figure)()
        finally:
            self.procs.stop_all()
            await self.peer_redis.close()


def machine() -> dict[str, Any]:
    def cmd(*args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")),
               "")
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    return {
        "cpu": cpu, "cores": len([1 for line in Path("/proc/cpuinfo").read_text().splitlines()
                                  if line.startswith("processor")]),
        "memory_gib": round(mem_kb / 1024 / 1024, 1), "kernel": platform.release(),
        "python": platform.python_version(), "loadavg_at_start": os.getloadavg(),
        "redis": cmd("redis-server", "--version"),
        "conveyor_commit": cmd("git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"),
        "conveyor_tree_dirty": bool(cmd("git", "-C", str(ROOT), "status", "--porcelain", "src")),
    }


def table(rows: list[Row]) -> str:
    head = ("figure", "system", "metric", "median", "min-max", "unit")
    body = []
    for figure, system, metric, unit, values in rows:
        s = summary(values)
        body.append((figure, system, metric, _fmt(s["median"]),
                     f"{_fmt(s['min'])}-{_fmt(s['max'])}", unit))
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(head, widths, strict=True))]
    lines.append("-|-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (still 3 runs)")
    parser.add_argument("--only", action="append", choices=FIGURES, metavar="FIGURE",
                        help=f"run only this figure (repeatable): {', '.join(FIGURES)}")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure Celery, Dramatiq, RQ and arq (figures 2 and 3)")
    parser.add_argument("--peer", action="append", choices=sorted(pf.PEERS),
                        help="only these peers (repeatable)")
    parser.add_argument("--peer-db", type=int, default=13,
                        help="Redis DB index for the peers; must be empty (default 13)")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3)")
    return parser.parse_args(argv)


async def amain(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(**{**sizes.__dict__, "runs": args.runs})
    figures = [f for f in FIGURES if f in (args.only or FIGURES)]
    peers = (args.peer or list(pf.PEERS)) if args.peers else []
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = BENCH / "results"
    info = machine()
    info["mariadb"] = (await sql("SELECT VERSION()"))[0][0]
    versions = {}
    if {"latency", "drain"} & set(figures):
        for name in peers:
            versions[name] = pf.ensure_venv(pf.PEERS[name])
    bench = Bench(sizes, peers, args.peer_db, results_dir / "logs" / stamp)
    began = time.monotonic()
    error = None
    try:
        await bench.run(figures)
    except BenchError as exc:
        error = str(exc)
        print(f"bench failed: {exc}", file=sys.stderr)
    report = {
        "started": stamp, "seconds": round(time.monotonic() - began, 1),
        "quick": args.quick, "sizes": sizes.__dict__, "machine": info,
        "peer_versions": versions, "figures": bench.results, "error": error,
        "loadavg_at_end": os.getloadavg(),
    }
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print()
    print(table(bench.rows))
    load = info["loadavg_at_start"]
    print(f"\n{info['cores']} cores, {info['cpu']}; load average at start {load[0]:.1f}; "
          f"{report['seconds']:.0f} s; wrote {path.relative_to(ROOT)}")
    return 1 if error else 0


def main(argv: list[str] | None = None) -> int:
    install_signal_exit()
    args = parse_args(argv)
    try:
        return asyncio.run(amain(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        stop_everything()


if __name__ == "__main__":
    sys.exit(main())
