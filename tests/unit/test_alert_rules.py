"""The shipped alert rules (deploy/prometheus/alerts.yaml): valid (``promtool check rules``),
behaving as their unit tests say (``promtool test rules alerts_test.yaml``), and naming only
metrics Conveyor really exports, as read from a scrape of a full set of components."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from conveyor.bootstrap import build
from conveyor.config import load_settings
from conveyor.observability.sampler import Sampler
from tests.support.databases import unavailable

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
SUFFIXES = re.compile(r"_(total|bucket|sum|count)$")


def promtool(*args: str) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        unavailable("promtool (Debian's prometheus package; scripts/setup.sh --dev installs it)",
                    FileNotFoundError("promtool"))
    assert binary is not None
    done = subprocess.run([binary, *args], cwd=RULES, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS: 6 rules found" in promtool("check", "rules", "alerts.yaml")


def test_the_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yaml")


def rule_metrics() -> set[str]:
    """The metric families the rules' expressions read (suffixes of counters and
    histograms taken off)."""
    groups = yaml.safe_load((RULES / "alerts.yaml").read_text())["groups"]
    names = set()
    for rule in (r for g in groups for r in g["rules"]):
        names |= {SUFFIXES.sub("", n) for n in re.findall(r"\bconveyor_[a-z_]+", rule["expr"])}
    return names


async def test_the_rules_name_only_exported_metrics(tmp_path: Path) -> None:
    parts = await build(load_settings(database_url=str(tmp_path / "c.db")), standalone=True)
    try:
        await parts.store.migrate()
        parts.metrics.observe(Sampler(parts.coordination, scheduler=parts.scheduler(),
                                      worker=parts.worker(), stats=parts.store.stats))
        text = (await parts.metrics.scrape()).decode()
    finally:
        await parts.close()
    exported = {f.name for f in text_string_to_metric_families(text)}
    wanted = rule_metrics()
    assert len(wanted) >= 7
    assert wanted <= exported, f"not exported: {sorted(wanted - exported)}"
