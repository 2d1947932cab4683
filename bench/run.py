"""Conveyor's benchmark against the peers (docs/design.md §5, issues 6 and 17).

    .venv/bin/python bench/run.py --quick   # every figure, small sizes, 1 run (30 min, load 10-20)
    .venv/bin/python bench/run.py                  # full sizes, 3 runs each
    .venv/bin/python bench/run.py --only drain --system conveyor-mariadb --system taskiq

Figures every system shares, measured the same way (``peer_figs.py``): drain, sleep, latency,
create. Conveyor's own: concurrency, recovery, and the flat-cost figures of ``extras.py``:
backlog, counts, scale. Prints a table (median and min-max of the runs, the ratio to the
fastest peer) and writes everything, raw runs included, to ``bench/results/<timestamp>.json``.
Needs the local Redis, MariaDB and PostgreSQL (``scripts/services.sh``); installs each peer into
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
import extras
import peer_figs as pf
from conveyor_systems import ConveyorSystem, StandaloneSystem
from harness import (
    BENCH,
    ROOT,
    BenchError,
    Procs,
    install_signal_exit,
    percentile,
    pg,
    sql,
    stop_everything,
    summary,
)

SHARED = ("drain", "sleep", "latency", "create")
FIGURES = (*SHARED, "concurrency", "recovery", "backlog", "counts", "scale")
CONVEYORS = ("conveyor-mariadb", "conveyor-postgres", "conveyor-standalone", "conveyor-etcd")
DEFAULT_CONVEYORS = CONVEYORS[:3]


@dataclass(frozen=True)
class Sizes:
    runs: int
    drain: int  # no-ops drained
    drain_cap: float  # seconds: a system still draining then is measured on what it did
    naps: int  # 10 ms sleepers drained
    samples: int  # latency samples per run
    gap: float  # seconds between latency submissions
    create: int  # tasks per create run (batched: 10x), or ...
    create_cap: float  # ... seconds, whichever comes first
    sleepers: int  # concurrency: 1 s sleepers on one worker
    backlog: int  # tasks queued for the backlog figure (measured over the first `drain`)
    counted: tuple[int, ...]  # drains whose SQL statements and Redis commands are counted
    scale: tuple[int, ...]  # simulated workers per scale point


FULL = Sizes(runs=3, drain=20_000, drain_cap=60, naps=2_000, samples=200, gap=0.02,
             create=10_000, create_cap=10, sleepers=10_000, backlog=1_000_000,
             counted=(2_000, 20_000), scale=(1, 10, 50, 100))
QUICK = Sizes(runs=1, drain=5_000, drain_cap=30, naps=1_000, samples=100, gap=0.02,
              create=2_000, create_cap=3, sleepers=10_000, backlog=100_000,
              counted=(1_000, 5_000), scale=(1, 10, 50, 100))

Row = tuple[str, str, str, str, list[float]]  # figure, system, metric, unit, values per run
# The metrics of the shared figures, with the unit and whether more is better.
METRICS: dict[str, list[tuple[str, str, bool]]] = {
    "drain": [("from_launch_per_s", "tasks/s", True), ("after_first_per_s", "tasks/s", True),
              ("first_task_s", "s", False)],
    "sleep": [("from_launch_per_s", "tasks/s", True)],
    "latency": [("p50_ms", "ms", False), ("p99_ms", "ms", False)],
    "create": [(f"{m}_per_s", "tasks/s", True) for m in pf.CREATE_MODES],
}


# The counts the table shows (every command and counter is in the JSON).
COUNTED = ("sql_statements_per_task", "sql_commit_per_task", "sql_transactions_per_task",
           "sql_rows_inserted_per_task", "sql_rows_updated_per_task", "redis_commands_per_task")


class Bench:
    def __init__(self, sizes: Sizes, systems: list[str], peer_db: int, log_dir: Path) -> None:
        self.sizes = sizes
        self.procs = Procs(log_dir)
        self.peer_redis = pf.PeerRedis(peer_db)
        self.systems = [self.system(name) for name in systems]
        self.results: dict[str, Any] = {}
        self.rows: list[Row] = []
        self.load: dict[str, list[float]] = {}

    def system(self, name: str) -> pf.System:
        if name == "conveyor-standalone":
            return StandaloneSystem(self.procs)
        if name.startswith("conveyor-"):
            kind = name.removeprefix("conveyor-")
            db, coordination = ("mariadb", "etcd") if kind == "etcd" else (kind, "redis")
            return ConveyorSystem(self.procs, db, coordination)
        return pf.PeerSystem(self.procs, pf.PEERS[name], self.peer_redis)

    def record(self, figure: str, system: str, runs: list[dict[str, float]],
               metrics: list[tuple[str, str]]) -> None:
        self.results.setdefault(figure, {})[system] = {
            "runs": runs,
            "summary": {m: summary([r[m] for r in runs]) for m in runs[0]} if runs else {},
        }
        for metric, unit in metrics:
            self.rows.append((figure, system, metric, unit,
                              [r[metric] for r in runs if metric in r]))

    async def repeat(self, what: str, fn: Callable[[], Awaitable[dict[str, float]]]) -> list[
            dict[str, float]]:
        runs = []
        for i in range(self.sizes.runs):
            began = time.monotonic()
            try:
                runs.append(await fn())
            except BenchError as exc:  # one system failing does not end the others' figures
                print(f"  {what} run {i + 1}: FAILED: {exc}", flush=True)
                self.results.setdefault("errors", []).append(f"{what}: {exc}")
                continue
            print(f"  {what} run {i + 1}/{self.sizes.runs}: "
                  + ", ".join(f"{k}={v:.4g}" for k, v in runs[-1].items())
                  + f" ({time.monotonic() - began:.0f} s)", flush=True)
        return runs

    async def shared(self, figure: str, fn: Callable[[pf.System], Awaitable[
            dict[str, float]]]) -> None:
        for system in self.systems:
            runs = await self.repeat(f"{figure} {system.name}", lambda s=system: fn(s))
            counted = sorted({k for r in runs for k in r if k.startswith("etcd_")})
            self.record(figure, system.name, runs, [(m, u) for m, u, _ in METRICS[figure]]
                        + [(k, "per task") for k in counted])

    async def drain(self) -> None:
        s = self.sizes
        await self.shared("drain", lambda sys_: pf.drain(
            self.procs, sys_, self.peer_redis, "noop", s.drain, s.drain_cap))

    async def sleep(self) -> None:
        s = self.sizes
        await self.shared("sleep", lambda sys_: pf.drain(
            self.procs, sys_, self.peer_redis, "nap", s.naps, s.drain_cap))

    async def latency(self) -> None:
        s = self.sizes

        async def run(system: pf.System) -> dict[str, float]:
            seconds, per_task = await pf.latency(self.procs, system, self.peer_redis,
                                                 s.samples, s.gap)
            ms = [x * 1000 for x in seconds]
            return {"p50_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95),
                    "p99_ms": percentile(ms, 99), "max_ms": max(ms), "samples": len(ms),
                    **per_task}

        await self.shared("latency", run)

    async def create(self) -> None:
        s = self.sizes

        async def run(system: pf.System) -> dict[str, float]:
            out = await pf.create(system, self.peer_redis, s.create, s.create_cap)
            flat = {f"{m}_per_s": v["tasks_per_s"] for m, v in out.items()}
            flat.update({f"{m}_client_cpu": v["client_cpu_share"] for m, v in out.items()})
            return flat

        await self.shared("create", run)

    async def concurrency(self) -> None:
        n = self.sizes.sleepers
        runs = await self.repeat("concurrency", lambda: cf.concurrency(self.procs, n, 1.0))
        self.record("concurrency", f"conveyor, {n:,} x sleep 1 s, 1 worker", runs,
                    [("wall_s", "s"), ("worker_peak_rss_mb", "MB")])

    async def recovery(self) -> None:
        runs = await self.repeat("failover", lambda: cf.failover(self.procs))
        self.record("recovery", "leader kill -9, 3 schedulers, 1 s lease", runs,
                    [("failover_s", "s"), ("max_start_gap_s", "s")])
        runs = await self.repeat("worker crash", lambda: cf.worker_recovery(self.procs))
        self.record("recovery", "worker kill -9, heartbeat TTL 3 s", runs,
                    [("recovery_s", "s")])
        # The same with every timing setting at its default (the bars: < 10 s and < 30 s).
        runs = await self.repeat("failover, defaults",
                                 lambda: cf.failover(self.procs, lease=None))
        self.record("recovery", "leader kill -9, 3 schedulers, default settings", runs,
                    [("failover_s", "s"), ("max_start_gap_s", "s")])
        runs = await self.repeat("worker crash, defaults",
                                 lambda: cf.worker_recovery(self.procs, ttl=None))
        self.record("recovery", "worker kill -9, default settings", runs,
                    [("recovery_s", "s")])

    async def backlog(self) -> None:
        s = self.sizes
        for queued in (s.drain, s.backlog):
            runs = await self.repeat(f"backlog {queued:,}", lambda q=queued: pf.drain(
                self.procs, ConveyorSystem(self.procs), self.peer_redis, "noop", q,
                s.drain_cap * 10, measure=s.drain))
            self.record("backlog", f"conveyor MariaDB, {queued:,} queued, first {s.drain:,}",
                        runs, [("after_first_per_s", "tasks/s")])

    async def counts(self) -> None:
        for kind in ("mariadb", "postgres"):
            for n in self.sizes.counted:
                out = await extras.counts(self.procs, self.peer_redis, kind, n)
                print(f"  counts {kind} {n:,}: " + ", ".join(
                    f"{k}={v:.4g}" for k, v in out.items()), flush=True)
                self.record("counts", f"conveyor {kind}, drain of {n:,}", [out],
                            [(k, "per task") for k in COUNTED if k in out])

    async def scale(self) -> None:
        for n in self.sizes.scale:
            runs = await self.repeat(f"scale {n}", lambda k=n: extras.scale(self.procs, k))
            self.record("scale", f"1 scheduler, {n} simulated workers x 10", runs,
                        [("dispatch_p50_ms", "ms"), ("dispatch_p99_ms", "ms")])

    async def run(self, figures: list[str]) -> None:
        """Every figure in turn; the load average at the start and after each figure."""
        await self.peer_redis.claim()
        self.load = {"start": loadavg()}
        try:
            for figure in figures:
                print(f"== {figure} (load average {os.getloadavg()[0]:.1f})", flush=True)
                await getattr(self, figure)()
                self.load[figure] = loadavg()
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


def ratios(rows: list[Row]) -> dict[tuple[str, str, str], float]:
    """Per shared-figure row: the ratio to the fastest peer of the same run and metric, as a
    speed (> 1: faster than every peer), by medians."""
    better = {(f, m): up for f, ms in METRICS.items() for m, _, up in ms}
    best: dict[tuple[str, str], float] = {}
    for figure, system, metric, _, values in rows:
        if (figure, metric) in better and not system.startswith("conveyor") and values:
            v = summary(values)["median"]
            pick = max if better[figure, metric] else min
            key = (figure, metric)
            best[key] = pick(best[key], v) if key in best else v
    out = {}
    for figure, system, metric, _, values in rows:
        if (figure, metric) in best and values:
            v, b = summary(values)["median"], best[figure, metric]
            out[figure, system, metric] = v / b if better[figure, metric] else b / v
    return out


def table(rows: list[Row]) -> str:
    """Markdown: every row with its median, range and ratio to the fastest peer."""
    ratio = ratios(rows)
    head = ("figure", "system", "metric", "median", "min-max", "unit", "vs fastest peer")
    body = []
    for figure, system, metric, unit, values in rows:
        s = summary(values)
        r = ratio.get((figure, system, metric))
        body.append((figure, system, metric, _fmt(s["median"]),
                     f"{_fmt(s['min'])}-{_fmt(s['max'])}", unit,
                     "" if r is None else f"{r:.2f}"))
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in body]
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
    parser.add_argument("--quick", action="store_true", help="smaller sizes, 1 run")
    parser.add_argument("--only", action="append", choices=FIGURES, metavar="FIGURE",
                        help=f"run only this figure (repeatable): {', '.join(FIGURES)}")
    parser.add_argument("--peers", action=argparse.BooleanOptionalAction, default=True,
                        help="also measure the peers in the shared figures")
    parser.add_argument("--system", action="append", choices=[*CONVEYORS, *sorted(pf.PEERS)],
                        help="only these systems in the shared figures (repeatable); default: "
                        "Conveyor on MariaDB, PostgreSQL and SQLite, and every peer")
    parser.add_argument("--peer-db", type=int, default=9,
                        help="Redis DB index for the peers and the probes; must be empty "
                        "(default 9)")
    parser.add_argument("--runs", type=int, help="runs per figure (default 3; 1 with --quick)")
    return parser.parse_args(argv)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def amain(args: argparse.Namespace) -> int:
    sizes = QUICK if args.quick else FULL
    if args.runs:
        sizes = Sizes(**{**sizes.__dict__, "runs": args.runs})
    figures = [f for f in FIGURES if f in (args.only or FIGURES)]
    systems = args.system or [*DEFAULT_CONVEYORS, *(pf.PEERS if args.peers else [])]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    results_dir = BENCH / "results"
    info = machine()
    info["mariadb"] = (await sql("SELECT VERSION()"))[0][0]
    info["postgres"] = (await pg("SHOW server_version"))[0][0]
    versions = {}
    if set(SHARED) & set(figures):
        for name in systems:
            if name in pf.PEERS:
                versions[name] = pf.ensure_venv(pf.PEERS[name])
    bench = Bench(sizes, systems if set(SHARED) & set(figures) else [], args.peer_db,
                  results_dir / "logs" / stamp)
    began = time.monotonic()
    error = None
    try:
        await bench.run(figures)
    except BenchError as exc:
        error = str(exc)
        print(f"bench failed: {exc}", file=sys.stderr)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was measured
        error = f"interrupted ({exc})"
        print(error, file=sys.stderr)
    report = {
        "started": stamp, "seconds": round(time.monotonic() - began, 1),
        "quick": args.quick, "sizes": sizes.__dict__, "machine": info,
        "peer_versions": versions, "figures": bench.results, "error": error,
        "loadavg_at_end": os.getloadavg(), "loadavg_per_figure": bench.load,
        "table": table(bench.rows),
    }
    results_dir.mkdir(exist_ok=True)
    path = results_dir / f"{stamp}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print()
    print(table(bench.rows))
    print(f"\n{info['cores']} cores, {info['cpu']}; load average (1 min) "
          + ", ".join(f"{k} {v[0]:.1f}" for k, v in report["loadavg_per_figure"].items())
          + f"; {report['seconds']:.0f} s; wrote {path.relative_to(ROOT)}")
    return 1 if error or bench.results.get("errors") else 0


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
