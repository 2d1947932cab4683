"""The Python workflow helpers build the graph they say (docs/design.md §10)."""

from __future__ import annotations

import pytest

from conveyor.canvas import chain, chord, group, step, with_options
from conveyor.errors import ValidationError
from conveyor.workflows import order


def test_a_chain_of_a_group_makes_a_diamond() -> None:
    nodes = chain(step("fetch", url="u"), group(step("resize", size=64), step("stamp")),
                  step("report")).nodes()
    assert nodes == {
        "fetch-0": {"task_type": "fetch", "payload": {"url": "u"}},
        "resize-1": {"task_type": "resize", "payload": {"size": 64}, "after": ["fetch-0"]},
        "stamp-2": {"task_type": "stamp", "payload": {}, "after": ["fetch-0"]},
        "report-3": {"task_type": "report", "payload": {},
                     "after": ["resize-1", "stamp-2"]},
    }
    assert order({n: b.get("after", []) for n, b in nodes.items()})[0] == "fetch-0"


def test_a_chord_collects_the_results_of_its_header() -> None:
    flow = chord(group(*(step("leaf", i=i) for i in range(3))),
                 with_options(step("sum"), priority="high"))
    nodes = flow.nodes()
    assert nodes["sum-3"] == {"task_type": "sum", "payload": {}, "priority": "high",
                              "after": ["leaf-0", "leaf-1", "leaf-2"],
                              "inputs": {"results": "*.result"}}


def test_empty_parts_are_refused() -> None:
    with pytest.raises(ValidationError, match="chain"):
        chain()
    with pytest.raises(ValidationError, match="group"):
        group()


def test_a_part_knows_its_end_nodes_and_whether_its_result_is_a_list() -> None:
    fan = group(step("a"), chain(step("b"), step("c")))
    assert fan.built()[1] == ["a-0", "c-2"] and fan.many
    joined = chord(fan, step("sum"))
    assert joined.built()[1] == ["sum-3"] and not joined.many
    assert chain(step("x"), fan).many and not step("x").many
