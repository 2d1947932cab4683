"""The pure release rules of docs/design.md §10 and the workflow graph checks."""

from __future__ import annotations

import pytest

from conveyor.dependencies import Edge, check_parents, decide, dig, parse_input
from conveyor.errors import ValidationError
from conveyor.models import Input, TaskStatus
from conveyor.workflows import MAX_NODES, WorkflowState, order, state_of

S = TaskStatus


def edge(parent: str, status: S | None, policy: str = "cancel", **kw: object) -> Edge:
    return Edge(parent, int(parent[1:]) if parent[1:].isdigit() else 0, policy, status,
                **kw)  # type: ignore[arg-type]


def test_released_only_once_every_parent_succeeded() -> None:
    assert decide({}, [edge("p1", S.SUCCESS), edge("p2", S.PROCESSING)]).target is None
    assert decide({}, [edge("p1", S.SUCCESS), edge("p2", S.SUCCESS)]).target == S.PENDING
    # A parent retrying (back to PENDING after a failure) has not failed for good.
    assert decide({}, [edge("p1", S.PENDING)]).target is None


@pytest.mark.parametrize("ended", [S.FAILED, S.TIMEOUT, S.CANCELLED, None])
def test_a_parent_ended_without_success_cancels_naming_it(ended: S | None) -> None:
    verdict = decide({}, [edge("p1", S.PROCESSING), edge("p2", ended)])
    assert verdict.target == S.CANCELLED and "p2" in verdict.reason


def test_policy_run_waits_for_every_parent_then_runs() -> None:
    running = [edge("p1", S.FAILED, "run"), edge("p2", S.PROCESSING, "run")]
    assert decide({}, running).target is None
    done = [edge("p1", S.FAILED, "run"), edge("p2", S.SUCCESS, "run")]
    assert decide({}, done).target == S.PENDING


def test_inputs_fill_the_payload_and_a_fan_in_keeps_parent_order() -> None:
    edges = [
        edge("p2", S.SUCCESS, parent_result={"v": 2}, inputs=(Input("all", None, "v"),)),
        edge("p1", S.SUCCESS, parent_result={"v": 1, "deep": [{"x": "y"}]},
             inputs=(Input("all", None, "v"), Input("one", "p1", "deep.0.x"))),
    ]
    verdict = decide({"keep": True}, edges)
    assert verdict.payload == {"keep": True, "all": [1, 2], "one": "y"}


def test_a_missing_path_cancels_with_the_reason() -> None:
    verdict = decide({}, [edge("p1", S.SUCCESS, parent_result={},
                               inputs=(Input("k", "p1", "a.b"),))])
    assert verdict.target == S.CANCELLED and "'a.b'" in verdict.reason and "p1" in verdict.reason
    assert dig({"a": 1}, "", "p") == {"a": 1}


def test_input_references() -> None:
    assert parse_input("k", "fetch.result.path", {"fetch": "ID"}) == Input("k", "ID", "path")
    assert parse_input("k", "*.result", {}) == Input("k", None, "")
    for bad in ("fetch", "fetch.payload", "other.result"):
        with pytest.raises(ValidationError, match=r"inputs\.k"):
            parse_input("k", bad, {"fetch": "ID"})


def test_parent_lists() -> None:
    assert check_parents(["a", "b"], "run") == ("a", "b")
    with pytest.raises(ValidationError, match="a more than once"):
        check_parents(["a", "a"], "cancel")
    with pytest.raises(ValidationError, match="on_parent_failure"):
        check_parents([], "maybe")


def test_order_puts_parents_first() -> None:
    got = order({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []})
    assert got[0] == "a" and got[-1] == "d" and set(got) == {"a", "b", "c", "d"}


@pytest.mark.parametrize(("graph", "named"), [
    ({"a": ["x"]}, "'x'"),
    ({"a": ["b"], "b": ["a"], "c": []}, "'a', 'b'"),
    ({"a": ["a"]}, "'a'"),
    ({"bad name": []}, "'bad name'"),
    ({}, "at least one"),
])
def test_bad_graphs_name_the_offenders(graph: dict[str, list[str]], named: str) -> None:
    with pytest.raises(ValidationError) as caught:
        order(graph)
    assert named in str(caught.value)
    assert "'c'" not in str(caught.value)


def test_too_many_nodes() -> None:
    with pytest.raises(ValidationError, match=str(MAX_NODES)):
        order({f"n{i}": [] for i in range(MAX_NODES + 1)})


def test_workflow_state() -> None:
    assert state_of([S.SUCCESS, S.WAITING]) == WorkflowState.RUNNING
    assert state_of([S.SUCCESS, S.SUCCESS]) == WorkflowState.SUCCESS
    assert state_of([S.FAILED, S.CANCELLED, S.SUCCESS]) == WorkflowState.FAILED
    assert state_of([S.CANCELLED, S.SUCCESS]) == WorkflowState.CANCELLED
