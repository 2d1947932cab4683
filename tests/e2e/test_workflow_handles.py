"""Against ``conveyor standalone``: canvas parts submitted with ``.submit(client)`` /
``await .asubmit(async_client)`` and awaited through their handles; sharded creates from the
client and the CLI, and a broadcast; ``conveyor show`` of a workflow as a tree and of a
task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.canvas import chain, chord, group, step
from conveyor.client import AsyncClient, Client
from conveyor.client.flows import WorkflowFailed
from tests.e2e.test_standalone import run_cli, standalone

pytestmark = pytest.mark.slow


async def test_handles_wait_for_the_last_nodes_and_raise_on_failure(tmp_path: Path) -> None:
    with standalone(tmp_path, tmp_path / "c.db") as server, \
            Client(server.url, timeout=10) as client:
        one = step("echo", v=1).submit(client)
        assert one.result(timeout=30) == {"v": 1}
        fan = group(*(step("echo", i=i) for i in range(4))).submit(client, name="fan")
        assert fan.result(timeout=30) == [{"i": i} for i in range(4)]
        summed = chain(step("echo", v=0), chord(group(step("echo", i=1), step("echo", i=2)),
                                                step("echo", total=True))).submit(client)
        assert summed.result(timeout=30) == {"total": True, "results": [{"i": 1}, {"i": 2}]}
        broken = chain(step("fail", permanent=True), step("echo")).submit(client)
        with pytest.raises(WorkflowFailed) as failed:
            broken.result(timeout=30)
        assert "FAILED" in str(failed.value) and broken.id in str(failed.value)
        assert set(failed.value.failed) == set(broken.nodes)  # the failure and its cancel
        async with AsyncClient(server.url, timeout=10) as aclient:
            handle = await group(step("echo", a=1), step("echo", b=2)).asubmit(aclient)
            assert await handle.result(timeout=30) == [{"a": 1}, {"b": 2}]
            bad = await step("fail", permanent=True).asubmit(aclient)
            with pytest.raises(WorkflowFailed):
                await bad.result(timeout=30)


def test_shards_from_the_client_and_the_cli_and_show_as_a_tree(tmp_path: Path) -> None:
    with standalone(tmp_path, tmp_path / "c.db") as server, \
            Client(server.url, timeout=10) as client:
        url = ("--url", server.url)
        made = client.workflows.shard("echo", {"j": 1}, 3, {"task_type": "echo"})
        assert sorted(made["nodes"]) == ["shard-0", "shard-1", "shard-2", "then"]
        by_cli = run_cli("workflows", "shard", "echo", "--shards", "2", "-p", '{"k": 2}',
                         "--then", '{"task_type": "echo"}', "--json", *url)
        assert by_cli.returncode == 0, by_cli.stderr
        flow = json.loads(by_cli.stdout)
        then = client.wait(flow["nodes"]["then"], 30)
        assert then.result["results"] == [{"k": 2, "shard_index": i, "shard_total": 2}
                                          for i in range(2)]
        spread = run_cli("workflows", "broadcast", "echo", "-p", '{"b": 1}', "--json", *url)
        assert spread.returncode == 0, spread.stderr
        [copy] = json.loads(spread.stdout)["nodes"].values()  # the standalone's one worker
        assert client.wait(copy, 30).result == {"b": 1}
        assert client.workflows.broadcast("echo")["nodes"].keys() == {"copy-0"}
        diamond = {"a": {"task_type": "echo"}, "b": {"task_type": "echo", "after": ["a"]},
                   "c": {"task_type": "echo", "after": ["a"]},
                   "d": {"task_type": "echo", "after": ["b", "c"]}}
        wf = client.workflows.submit("diamond", diamond)
        client.wait(wf["nodes"]["d"], 30)
        shown = run_cli("show", wf["workflow_id"], *url)
        assert shown.returncode == 0, shown.stderr
        lines = [line for line in shown.stdout.splitlines() if " a " in f" {line} "
                 or any(f"  {n}" in line for n in "bcd")]
        assert "SUCCESS" in shown.stderr
        text = shown.stdout
        assert text.index(" a ") < text.index("  b") < text.index("    d") < text.index("  c")
        assert "also after c" in text, lines
        task = run_cli("show", wf["nodes"]["a"], "--json", *url)
        assert json.loads(task.stdout)["task_id"] == wf["nodes"]["a"]
        missing = run_cli("show", "01KZZZZZZZZZZZZZZZZZZZZZZZ", *url)
        assert missing.returncode != 0 and "no task or workflow" in missing.stderr
