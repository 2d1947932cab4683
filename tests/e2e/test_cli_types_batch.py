"""``conveyor types put|get|ls|rm`` and ``conveyor batch`` against a real standalone, the CLI
run as a subprocess."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_standalone import (
    Standalone,
    clean_env,
    client_for,
    run_cli,
    standalone,
    wait_all_final,
)
from tests.support.processes import conveyor_command

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    workdir = tmp_path_factory.mktemp("types-batch")
    with standalone(workdir, workdir / "conveyor.db") as running:
        yield running


def test_types_put_get_ls_rm(server: Standalone, tmp_path: Path) -> None:
    url = ("--url", server.url)
    put = run_cli("types", "put", "echo", '{"timeout_seconds": 12, "max_retries": 1}', *url)
    assert put.returncode == 0, put.stderr
    assert "stored the config of echo" in put.stderr
    (tmp_path / "sleep.yaml").write_text("timeout_seconds: 5\npriority: high\n")
    from_file = run_cli("types", "put", "sleep", "-f", str(tmp_path / "sleep.yaml"), "--json",
                        *url)
    assert json.loads(from_file.stdout)["priority"] == "high"

    got = json.loads(run_cli("types", "get", "echo", "--json", *url).stdout)
    assert (got["timeout_seconds"], got["max_retries"]) == (12, 1)
    listed = run_cli("types", "ls", *url)
    assert "echo" in listed.stdout and "sleep" in listed.stdout and "12" in listed.stdout
    assert {c["task_type"] for c in json.loads(
        run_cli("types", "ls", "--json", *url).stdout)} == {"echo", "sleep"}
    # The config applies to new tasks of the type.
    task = json.loads(run_cli("submit", "echo", "--json", *url).stdout)
    assert task["timeout_seconds"] == 12

    for task_type in ("echo", "sleep"):
        removed = run_cli("types", "rm", task_type, *url)
        assert removed.returncode == 0, removed.stderr
    assert json.loads(run_cli("types", "ls", "--json", *url).stdout) == []
    missing = run_cli("types", "get", "echo", *url)
    assert missing.returncode == 1 and "echo" in missing.stderr

    bad = run_cli("types", "put", "echo", "[1, 2]", *url)
    assert bad.returncode == 2 and "must be an object" in bad.stderr
    refused = run_cli("types", "put", "echo", '{"max_retries": -1}', *url)
    assert refused.returncode == 1 and "max_retries" in refused.stderr


def test_batch_submits_a_file_of_json_lines(server: Standalone, tmp_path: Path) -> None:
    lines = [json.dumps({"task_type": "echo", "payload": {"i": i}}) for i in range(1200)]
    lines.insert(5, "")  # blank lines are skipped
    jsonl = tmp_path / "tasks.jsonl"
    jsonl.write_text("\n".join(lines) + "\n")
    ran = run_cli("batch", str(jsonl), "--json", "--url", server.url, timeout=120)
    assert ran.returncode == 0, ran.stderr
    created = json.loads(ran.stdout)
    assert len(created) == 1200
    assert "submitted 1200 tasks (1200 new" in ran.stderr
    with client_for(server) as client:
        final = wait_all_final(client, [c["task_id"] for c in created[:20]], timeout=30)
    assert {info.status for info in final.values()} == {"SUCCESS"}

    piped = subprocess.run(
        [conveyor_command(), "batch", "-", "--url", server.url],
        input='{"task_type": "echo", "idempotency_key": "once"}\n' * 2, capture_output=True,
        text=True, env=clean_env(), timeout=30, check=False)
    assert piped.returncode == 0, piped.stderr
    assert "submitted 2 tasks (1 new, 1 already there by idempotency key)" in piped.stderr

    (tmp_path / "bad.jsonl").write_text('{"task_type": "echo"}\n{oops\n')
    bad = run_cli("batch", str(tmp_path / "bad.jsonl"), "--url", server.url)
    assert bad.returncode == 2 and "line 2 is not JSON" in bad.stderr
