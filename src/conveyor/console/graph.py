"""A workflow drawn as a layered graph (pure): each node in the column of its longest path
from a root, parents left of their children, one row per node of a column; edges are drawn
from a parent's right side to a child's left side. The page renders it as inline SVG on the
server, so no graph library (and no script) is needed, and every label is escaped by the
template like any other text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor.workflows import order

WIDTH, HEIGHT = 170, 44  # a node's box
GAP_X, GAP_Y = 60, 18  # between columns, between rows
MAX_DRAWN = 300  # larger workflows are listed, not drawn


@dataclass(frozen=True, slots=True)
class Box:
    node: str
    task_id: str
    status: str  # a task state, or "PURGED" when its task is gone
    x: int
    y: int


@dataclass(frozen=True, slots=True)
class Edge:
    x1: int
    y1: int
    x2: int
    y2: int


@dataclass(frozen=True, slots=True)
class Drawing:
    boxes: list[Box]
    edges: list[Edge]
    width: int
    height: int


def layout(
    nodes: Mapping[str, tuple[str, str]], after: Mapping[str, Sequence[str]],
) -> Drawing:
    """``nodes``: node → (task id, status); ``after``: node → the nodes it runs after (names
    outside ``nodes`` are ignored)."""
    parents = {n: [p for p in after.get(n, ()) if p in nodes] for n in nodes}
    column: dict[str, int] = {}
    for n in order(parents):  # parents first
        column[n] = 1 + max((column[p] for p in parents[n]), default=-1)
    rows: dict[int, int] = {}
    boxes: dict[str, Box] = {}
    for n in sorted(nodes, key=lambda n: (column[n], n)):
        row = rows.get(column[n], 0)
        rows[column[n]] = row + 1
        task_id, status = nodes[n]
        boxes[n] = Box(n, task_id, status, column[n] * (WIDTH + GAP_X), row * (HEIGHT + GAP_Y))
    edges = [
        Edge(boxes[p].x + WIDTH, boxes[p].y + HEIGHT // 2, boxes[n].x, boxes[n].y + HEIGHT // 2)
        for n in sorted(nodes) for p in parents[n]
    ]
    width = (max(column.values(), default=0) + 1) * (WIDTH + GAP_X) - GAP_X
    height = max(rows.values(), default=1) * (HEIGHT + GAP_Y) - GAP_Y
    return Drawing(list(boxes.values()), edges, width, height)
