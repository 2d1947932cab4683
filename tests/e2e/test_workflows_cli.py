"""``conveyor workflows`` as a subprocess against ``conveyor standalone``: submit a diamond,
watch it succeed with ``show``, list it, cancel and retry, and a bad graph's message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.client import Client
from tests.e2e.test_standalone import run_cli, standalone, wait_until

pytestmark = pytest.mark.slow

DIAMOND = {"name": "diamond", "tasks": {
    "a": {"task_type": "echo", "payload": {"v": 1}},
    "b": {"task_type": "echo", "after": ["a"], "inputs": {"from_a": "a.result.v"}},
    "c": {"task_type": "echo", "after": ["a"]},
    "d": {"task_type": "echo", "after": ["b", "c"]},
}}


def test_the_cli_submits_shows_lists_and_retries(tmp_path: Path) -> None:
    with standalone(tmp_path, tmp_path / "c.db") as server, \
            Client(server.url, timeout=10) as client:
        url = ("--url", server.url)
        made = run_cli("workflows", "submit", json.dumps(DIAMOND), "--json", *url)
        assert made.returncode == 0, made.stderr
        flow = json.loads(made.stdout)
        wf = flow["workflow_id"]
        wait_until(lambda: client.workflows.get(wf)["state"] == "SUCCESS", 30, "the diamond")
        shown = run_cli("workflows", "show", wf, *url)
        assert shown.returncode == 0 and "SUCCESS" in shown.stderr, shown.stderr
        assert all(n in shown.stdout for n in "abcd")
        assert client.get(flow["nodes"]["b"]).result == {"from_a": 1}
        listed = run_cli("workflows", "list", "--name", "diamond", "--json", *url)
        assert listed.returncode == 0 and wf in listed.stdout, listed.stderr
        again = run_cli("workflows", "retry", wf, *url)
        assert again.returncode != 0 and "SUCCESS" in again.stderr
        held = {"name": "held", "tasks": {"x": {"task_type": "echo", "delay_seconds": 600},
                                          "y": {"task_type": "echo", "after": ["x"]}}}
        other = json.loads(run_cli("workflows", "submit", json.dumps(held), "--json",
                                   *url).stdout)["workflow_id"]
        cancelled = run_cli("workflows", "cancel", other, "--json", *url)
        assert json.loads(cancelled.stdout)["state"] == "CANCELLED", cancelled.stderr
        retried = run_cli("workflows", "retry", other, "--json", *url)
        states = {n: v["status"] for n, v in json.loads(retried.stdout)["nodes"].items()}
        # The retried root is runnable at once, so a worker may already hold it.
        assert "CANCELLED" not in states.values(), retried.stderr
        wait_until(lambda: client.workflows.get(other)["state"] == "SUCCESS", 30, "the retry")
        cycle = {"name": "bad", "tasks": {"p": {"task_type": "echo", "after": ["q"]},
                                          "q": {"task_type": "echo", "after": ["p"]}}}
        refused = run_cli("workflows", "submit", json.dumps(cycle), *url)
        assert refused.returncode != 0 and "cycle" in refused.stderr and "'p'" in refused.stderr
