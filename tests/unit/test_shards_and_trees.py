"""Pure parts of the later workflow features: the nodes a sharded or broadcast create makes,
a pinned queue item and where the dispatcher puts it, and the order ``conveyor show`` prints a
workflow's nodes in."""

from __future__ import annotations

import pytest

from conveyor.balancing import RoundRobin
from conveyor.cli.workflows import tree_rows
from conveyor.errors import ValidationError
from conveyor.models import Priority, QueueItem, WorkerInfo
from conveyor.scheduler.planning import plan
from conveyor.service import TaskRequest
from conveyor.shards import ShardRequest, copy_nodes, shard_nodes


def test_shards_get_their_index_and_the_fan_in_reads_them_in_order() -> None:
    nodes = shard_nodes(ShardRequest(TaskRequest("echo", {"j": 1}), 11,
                                     TaskRequest("echo", {"sum": 1})))
    names = [f"shard-{i:02d}" for i in range(11)]
    assert list(nodes) == [*names, "then"]
    assert nodes["shard-07"].task.payload == {"j": 1, "shard_index": 7, "shard_total": 11}
    assert nodes["then"].after == tuple(names)
    assert nodes["then"].task.inputs == {"results": "*.result"}


@pytest.mark.parametrize(("ask", "field"), [
    (ShardRequest(TaskRequest("echo"), 0), "shards"),
    (ShardRequest(TaskRequest("echo"), 10_001), "shards"),
    (ShardRequest(TaskRequest("echo"), True), "shards"),
    (ShardRequest(TaskRequest("echo", depends_on=("x",)), 2), "depends_on"),
    (ShardRequest(TaskRequest("echo", wait_timeout=5), 2), "wait_timeout_seconds"),
    (ShardRequest(TaskRequest("echo"), 2, TaskRequest("echo", depends_on=("x",))), "then"),
])
def test_bad_shard_requests_name_the_field(ask: ShardRequest, field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        shard_nodes(ask)


def test_the_tree_puts_each_node_once_under_its_first_parent() -> None:
    nodes = {"a": {}, "b": {"after": ["a"]}, "c": {"after": ["a"]},
             "d": {"after": ["b", "c"]}, "z": {"after": ["gone"]}}
    assert tree_rows(nodes) == [
        (0, "a", []), (1, "b", []), (2, "d", ["c"]), (1, "c", []), (0, "z", []),
    ]


def test_a_pinned_item_round_trips_and_goes_to_its_worker_only() -> None:
    for item in (QueueItem("t", "echo", Priority.NORMAL, worker="w-2"),
                 QueueItem("t", "echo", Priority.NORMAL, "acme", "w-2"),
                 QueueItem("t", "echo", Priority.NORMAL, "acme")):
        assert QueueItem.decode(item.encode()) == item
    assert QueueItem("t", "e", Priority.LOW).encode() == "t|e|0"  # unchanged unpinned form
    workers = [WorkerInfo(f"w-{i}", "h", 1, capacity=5) for i in range(3)]
    pinned = QueueItem("t", "echo", Priority.NORMAL, worker="w-2")
    assert plan([pinned], workers, RoundRobin(), set()) == [(pinned, "w-2")]
    assert plan([pinned], workers[:2], RoundRobin(), set()) == []


def test_a_broadcast_makes_one_pinned_copy_per_worker() -> None:
    ask = ShardRequest(TaskRequest("echo", {"x": 1}), 0, TaskRequest("echo"), broadcast=True)
    nodes = copy_nodes(ask, ["wb", "wa"])
    assert list(nodes) == ["copy-0", "copy-1", "then"]
    assert nodes["copy-0"].task.pinned_worker == "wa"
    assert nodes["copy-1"].task.payload == {"x": 1} and nodes["copy-1"].task.pinned_worker == "wb"
    assert nodes["then"].after == ("copy-0", "copy-1")
    with pytest.raises(ValidationError, match="broadcast: no live worker"):
        copy_nodes(ask, [])
