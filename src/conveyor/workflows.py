"""Pure: a workflow's graph checked and ordered, and its state (docs/design.md §10).

A workflow is a DAG of named nodes, each a task whose ``after`` names the nodes it depends on.
Everything wrong with a graph is found before anything is written, and named: unknown
``after`` names, nodes on a cycle, too many nodes. Its state is derived from its tasks' states,
never stored, so it cannot disagree with them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from conveyor.errors import ValidationError
from conveyor.models import TASK_TYPE_PATTERN, TaskStatus

MAX_NODES = 10_000
MAX_SHOWN = 20  # offenders named in one error text at most
S = TaskStatus


class WorkflowState(StrEnum):
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


@dataclass(frozen=True, slots=True)
class Workflow:
    """One row of ``workflows`` with its nodes (node name → task id) in creation order."""

    id: str
    tenant: str
    name: str
    created_at: float
    owner: str | None
    nodes: dict[str, str]


def _named(names: Sequence[str], quote: bool = True) -> str:
    shown = ", ".join(repr(n) if quote else n for n in names[:MAX_SHOWN])
    more = len(names) - MAX_SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


def order(after: Mapping[str, Sequence[str]], max_nodes: int = MAX_NODES) -> list[str]:
    """The nodes parents first (Kahn's algorithm), or ``ValidationError`` naming every
    offender."""
    _check_names(after, max_nodes)
    return _sorted(after)


def _check_names(after: Mapping[str, Sequence[str]], max_nodes: int) -> None:
    if not after:
        raise ValidationError("tasks: a workflow needs at least one node")
    if len(after) > max_nodes:
        raise ValidationError(f"tasks: at most {max_nodes} nodes, got {len(after)}")
    bad_names = [n for n in after if not TASK_TYPE_PATTERN.fullmatch(n)]
    if bad_names:
        raise ValidationError(f"tasks: node names must match {TASK_TYPE_PATTERN.pattern}: "
                              f"{_named(bad_names)}")
    unknown = sorted({f"{p!r} (tasks.{n}.after)" for n, ps in after.items() for p in ps
                      if p not in after})
    if unknown:
        raise ValidationError(f"after names unknown nodes: {_named(unknown, quote=False)}")
    selfish = [n for n, ps in after.items() if n in ps]
    if selfish:
        raise ValidationError(f"nodes that name themselves in after: {_named(selfish)}")


def _sorted(after: Mapping[str, Sequence[str]]) -> list[str]:
    waiting = {n: len(set(ps)) for n, ps in after.items()}
    children: dict[str, list[str]] = {n: [] for n in after}
    for n, ps in after.items():
        for p in dict.fromkeys(ps):
            children[p].append(n)
    ready = [n for n, count in waiting.items() if count == 0]
    done: list[str] = []
    while ready:
        node = ready.pop()
        done.append(node)
        for c in children[node]:
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    if len(done) != len(after):
        cycle = [n for n in after if waiting[n] > 0]
        raise ValidationError(f"a cycle runs through these nodes: {_named(cycle)}")
    return done


def state_of(statuses: Sequence[TaskStatus]) -> WorkflowState:
    """RUNNING while any node may still move on its own; then SUCCESS when every node
    succeeded, FAILED when one failed or timed out, CANCELLED otherwise."""
    if any(not s.is_final for s in statuses):
        return WorkflowState.RUNNING
    if all(s == S.SUCCESS for s in statuses):
        return WorkflowState.SUCCESS
    if any(s in (S.FAILED, S.TIMEOUT) for s in statuses):
        return WorkflowState.FAILED
    return WorkflowState.CANCELLED
