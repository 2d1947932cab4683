"""Pure parts of the later workflow features: the nodes a sharded create makes, and the order
``conveyor show`` prints a workflow's nodes in."""

from __future__ import annotations

import pytest

from conveyor.cli.workflows import tree_rows
from conveyor.errors import ValidationError
from conveyor.service import TaskRequest
from conveyor.shards import ShardRequest, shard_nodes


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
